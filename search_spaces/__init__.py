"""Search spaces: one module per space, each turning its architectures into ArchGraphs."""

from search_spaces.base import SearchSpace
from search_spaces.nasbench101 import NASBench101
from search_spaces.nasbench201 import NASBench201

__all__ = ["NASBench101", "NASBench201", "SearchSpace"]
