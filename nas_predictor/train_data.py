"""Data for training: labelled cells, their split and encoding, each epoch's batches, test-cell metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas_predictor.augment import isomorphic_relabel
from nas_predictor.config import ExperimentConfig
from nas_predictor.data import load_nb101_subset, load_nb101_tfrecord, load_table, paper_split, random_split
from nas_predictor.data.splits import held_out
from nas_predictor.encoding import CellTokenizer, GraphBatch, size_batches
from nas_predictor.errors import ConfigError, DataError
from nas_predictor.graph import ArchGraph
from nas_predictor.metrics import kendall_tau, summarize
from nas_predictor.predictor import Predictor
from nas_predictor.proxy_features import ProxyScaler
from nas_predictor.spaces import get_space
from nas_predictor.zero_cost_store import attach_proxies


@dataclass
class CellData:
    """Encoded cells with labels already scaled to model units (fractions for accuracy)."""

    batch: GraphBatch
    labels: torch.Tensor
    aug: GraphBatch | None = None
    variants: "ClassVariants | None" = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ClassVariants:
    """For each training cell, the encoded members of its equivalence class (the cell included).

    Member j of cell i is ``pool`` row ``member_ids[offsets[i] + j]``, for j < ``counts[i]``; flat
    arrays, so a batch draws its variants in one vectorised step.
    """

    pool: GraphBatch
    member_ids: torch.Tensor
    offsets: torch.Tensor
    counts: torch.Tensor

    def draw(self, idx: torch.Tensor, generator: torch.Generator) -> GraphBatch:
        """One uniformly random class member for each cell in ``idx``."""
        pick = (torch.rand(len(idx), generator=generator) * self.counts[idx]).long()
        return self.pool.select(self.member_ids[self.offsets[idx] + pick])


def class_variants(
    tokenizer: CellTokenizer, space: Any, archs: list[str], graphs: list[ArchGraph], cells: np.ndarray
) -> ClassVariants:
    """Variants of ``cells`` (indices into ``archs``/``graphs``, one arch per space cell) for
    ``train.equivalence_augment``; the pool holds each distinct member once."""
    position = {a: i for i, a in enumerate(archs)}
    pool_rows: dict[int, int] = {}
    member_ids: list[int] = []
    offsets: list[int] = []
    counts: list[int] = []
    for cell in cells:
        members = [position.get(m) for m in space.equivalent_archs(archs[cell])]
        members = [m for m in members if m is not None] or [int(cell)]
        offsets.append(len(member_ids))
        counts.append(len(members))
        member_ids.extend(pool_rows.setdefault(m, len(pool_rows)) for m in members)
    pool = tokenizer.encode([graphs[m] for m in pool_rows])
    return ClassVariants(pool, torch.tensor(member_ids), torch.tensor(offsets), torch.tensor(counts))


def cell_tokenizer(cfg: ExperimentConfig, data: PreparedData) -> CellTokenizer:
    """The tokenizer a run of ``cfg`` encodes ``data``'s cells with (the checkpoint stores its config); with
    ``encoding.proxies``, its proxy features are scaled by the training cells' (never the test cells')."""
    proxies = None
    if cfg.encoding.proxies:
        proxies = ProxyScaler.fit(cfg.encoding.proxies, [data.graphs[i] for i in data.train_idx],
                                  batch_size=cfg.encoding.proxy_batch_size).config()
    return CellTokenizer(data.space_vocab, cfg.encoding.num_freqs, cfg.encoding.variant, proxies)


def check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """``labels`` as float64, or a DataError naming the first NaN, infinite or non-positive one."""
    labels = np.asarray(labels, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(labels) | (labels <= 0))
    if bad.size:
        raise DataError(
            f"{name}: {bad.size} label(s) are NaN, infinite or not positive (first at position {bad[0]}: "
            f"{labels[bad[0]]!r}); the relative loss needs positive finite targets"
        )
    return labels


def encode_cells(
    tokenizer: CellTokenizer, graphs: list[ArchGraph], labels: np.ndarray, name: str, with_aug: bool = False
) -> CellData:
    """Encoded ``graphs`` with their checked labels; ``with_aug`` adds an isomorphic relabelling of each."""
    labels = check_labels(labels, name)
    if with_aug:
        # Encode originals and augmented copies together so both halves share one padded size.
        both = tokenizer.encode(graphs + [isomorphic_relabel(g) for g in graphs])
        n = len(graphs)
        return CellData(both.select(slice(0, n)), torch.tensor(labels, dtype=torch.float32),
                        both.select(slice(n, 2 * n)))
    return CellData(tokenizer.encode(graphs), torch.tensor(labels, dtype=torch.float32))


@dataclass
class PreparedData:
    """A benchmark's cells (arch strings and graphs), their split and their labels."""

    archs: list[str]
    graphs: list[ArchGraph]
    train_idx: np.ndarray
    valid_idx: np.ndarray
    test_idx: np.ndarray
    train_labels: np.ndarray  # table units (percent)
    eval_labels: np.ndarray  # table units, all archs
    space_vocab: tuple[str, ...]


def load_accuracy_table(cfg: ExperimentConfig, data_dir: str | None = None) -> Any:
    """The labelled cells of ``cfg.data``: NAS-Bench-201 (shared CSV or official .pth) or NAS-Bench-101
    (shared subset, repeats of a cell merged, or the official tfrecord)."""
    if cfg.data.benchmark == "nb101":
        if cfg.data.table_file is None:
            return load_nb101_subset(data_dir).merged()
        return load_nb101_tfrecord(cfg.data.table_file)
    return load_table(cfg.data.table_file, data_dir)


def prepare_data(cfg: ExperimentConfig, data_dir: str | None = None) -> PreparedData:
    """The labelled cells of ``cfg`` as graphs, split into train / validation / test."""
    space = get_space(cfg.space)
    table = load_accuracy_table(cfg, data_dir)
    train_labels = table.column(cfg.data.train_target)
    eval_labels = table.column(cfg.data.eval_target)
    n = len(table)
    if cfg.data.split == "paper":
        split = paper_split(n, cfg.data.n_train, cfg.data.n_valid)
    else:
        split = random_split(n, cfg.data.n_train, cfg.data.n_valid, cfg.data.split_seed)
    if cfg.data.test_on == "rest":
        split = held_out(split)
        if split.test.size == 0:
            raise ConfigError(f"data.test_on 'rest': {cfg.data.n_train} train + {cfg.data.n_valid} validation "
                              f"cells leave none of the {n} to test on")
    graphs = [space.to_graph(a) for a in table.arch_strs]
    if cfg.encoding.proxies:  # every cell's, from the proxy cache (computed where it has none yet)
        graphs = attach_proxies(space, table.arch_strs, graphs, batch_size=cfg.encoding.proxy_batch_size,
                                progress=True)
    return PreparedData(
        archs=table.arch_strs, graphs=graphs, train_idx=split.train, valid_idx=split.valid, test_idx=split.test,
        train_labels=train_labels, eval_labels=eval_labels, space_vocab=tuple(space.op_vocab),
    )


BUCKET_CHUNK = 64  # batches per size-sorted chunk with train.bucket_by_size


def epoch_batches(
    n: int, batch_size: int, generator: torch.Generator, sizes: np.ndarray | None = None,
) -> list[torch.Tensor]:
    """One epoch's batches of item indices: a random permutation cut into batches, or with ``sizes``
    each chunk of BUCKET_CHUNK batches of the permutation sorted by size before cutting and the batch
    order shuffled (every item still appears exactly once per epoch)."""
    perm = torch.randperm(n, generator=generator)
    if sizes is None:
        return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    batches = []
    chunk = batch_size * BUCKET_CHUNK
    for c in range(0, n, chunk):
        part = perm[c : c + chunk]
        part = part[torch.from_numpy(np.argsort(sizes[part.numpy()], kind="stable"))]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    order = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in order]


def predict_batch(model: torch.nn.Module, batch: GraphBatch, device: torch.device, batch_size: int) -> np.ndarray:
    """The model's outputs for every row of ``batch``, in its order (eval mode, no gradients)."""
    model.eval()
    sizes = getattr(batch, "sizes", None)  # whole networks: batches of similar sizes (size_batches)
    order = np.argsort(sizes, kind="stable") if sizes is not None else np.arange(len(batch))
    parts = (size_batches(order, sizes, batch_size, device.type) if sizes is not None
             else [order[i : i + batch_size] for i in range(0, len(batch), batch_size)])
    outs = []
    with torch.inference_mode():
        for part in parts:
            outs.append(model(batch.select(part).to(device)).float().cpu())
    out = torch.cat(outs).numpy()
    restored = np.empty_like(out)
    restored[order] = out
    return restored


def evaluate_prepared(predictor: Predictor, data: PreparedData, cfg: ExperimentConfig) -> dict[str, Any]:
    """Metrics on the test cells (all of NB201) against the evaluation target, from one prediction pass.

    ``kendall_tau`` follows ``predict.average_equivalent``; ``kendall_tau_plain`` scores each cell alone.
    """
    t1 = time.perf_counter()
    test_archs = [data.archs[i] for i in data.test_idx]
    pred, plain = predictor.predict_with_plain(
        test_archs, [data.graphs[i] for i in data.test_idx], cfg.train.eval_batch_size, cfg.predict.average_equivalent
    )
    predict_seconds = time.perf_counter() - t1
    truth = data.eval_labels[data.test_idx]
    unseen = ~np.isin(data.test_idx, np.concatenate([data.train_idx, data.valid_idx]))
    return {
        "num_archs": int(len(data.test_idx)),
        **summarize(truth, pred),
        "average_equivalent": cfg.predict.average_equivalent,
        "kendall_tau_plain": kendall_tau(truth, plain),
        "kendall_tau_unseen": kendall_tau(truth[unseen], pred[unseen]),
        "kendall_tau_train_target": kendall_tau(data.train_labels[data.test_idx], pred),
        "predict_seconds": predict_seconds,
    }
