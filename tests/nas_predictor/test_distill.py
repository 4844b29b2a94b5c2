import numpy as np
import torch

from nas_predictor.distill import distill
from nas_predictor.metrics import kendall_tau
from nas_predictor.model import ModelConfig, NARFormerV2
from nas_predictor.predictor import Predictor
from search_spaces import NASBench201


def test_student_learns_the_teachers_ranking():
    space = NASBench201()
    rng = np.random.default_rng(0)
    graphs = [space.to_graph(space.sample(rng)) for _ in range(400)]
    teacher_cfg = ModelConfig(hidden=64, num_blocks=2)
    torch.manual_seed(1)
    teacher_model = NARFormerV2(teacher_cfg)
    with torch.no_grad():  # a teacher whose output really depends on the ops
        teacher_model.head[-1].weight.mul_(50.0)
    meta = {
        "name": "teacher", "space": "nasbench201", "task": "accuracy", "label_scale": 0.01,
        "encoding": {"op_vocab": list(space.op_vocab), "num_freqs": 32, "variant": "nerf"},
        "model": teacher_cfg.model_dump(),
    }
    teacher = Predictor(meta, [teacher_model])
    target = teacher.predict_graphs(graphs)
    assert np.std(target) > 0.05
    student_cfg = ModelConfig(hidden=32, num_blocks=2)
    torch.manual_seed(0)
    untrained = kendall_tau(target, Predictor(meta, [NARFormerV2(student_cfg)]).predict_graphs(graphs))
    student, report = distill(teacher, graphs, student_cfg, epochs=60, batch_size=16, lr=3e-3, progress=False)
    assert student.meta["model"]["hidden"] == 32 and student.meta["distilled_from"] == "teacher"
    learned = kendall_tau(target, student.predict_graphs(graphs))
    assert learned > 0.6 and learned > untrained + 0.4
    assert report["seconds"] > 0
