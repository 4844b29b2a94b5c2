"""The bad-input suite's catalogue of cases: one flat list, in the order the results JSON lists them."""

from __future__ import annotations

import math
from typing import Any, Callable

from bad_inputs_checks import (_arch, _config_api, finite_json, _graph, _huge_graph_latency, _lock_api,
                               _nan_in_memory_prediction, _onnx_api, _oracle_error, _predict_api, _search,
                               search_summary, _strategy_api)
from bad_inputs_fixtures import NB201_ARCH, OWNERS, Case

# -- the cases --------------------------------------------------------------------------------------------
def cases() -> list[Case]:  # noqa: C901 - one flat list is the clearest form of a catalogue
    c: list[Case] = []
    E, R = "error", "result"

    def cli(category: str, kind: str, argv: list[str], fragment: str = "", expect: str = E, **kw: Any) -> None:
        c.append(Case(category, kind, expect, argv=argv, fragment=fragment, **kw))

    def api(category: str, kind: str, fn: Callable, fragment: str = "", expect: str = E, **kw: Any) -> None:
        c.append(Case(category, kind, expect, api=fn, fragment=fragment, **kw))

    # architecture strings: the CLI on NB201, the API on every space
    pr = ["predict", "nb201-accuracy", "--arch"]
    for kind, arch, frag in [
        ("NB201: empty string", "", "NAS-Bench-201"),
        ("NB201: unknown op", "|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "unknown op 'conv' on edge 0"),
        ("NB201: too few nodes", "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "NAS-Bench-201"),
        ("NB201: extra node", NB201_ARCH + "+|none~0|none~1|none~2|none~3|", "NAS-Bench-201"),
        ("NB201: input index not a number", NB201_ARCH.replace("~0|+", "~x|+", 1), "NAS-Bench-201"),
        ("NB201: input index out of range", NB201_ARCH.replace("skip_connect~2", "skip_connect~3"), "NAS-Bench-201"),
        ("NB201: no separators", "nor_conv_3x3", "NAS-Bench-201"),
        ("NB201: only separators", "|+|+|", "NAS-Bench-201"),
        ("NB201: non-ASCII junk", "|ñøπ~0|+|☃~0|", "NAS-Bench-201"),
        ("NB201: 10k characters", "|" + "none~0|" * 1500, "NAS-Bench-201"),
        ("NB201: whitespace inside", NB201_ARCH.replace("|+|", "| + |", 1), "NAS-Bench-201"),
    ]:
        cli("arch strings", kind, pr + [arch], frag)
    for space, kind, arch in [
        ("nasbench201", "NB201 API: wrong edge count", "|none~0|+|none~0|"),
        ("nasbench201", "NB201 API: not a string", 12345),
        ("nasbench101", "NB101: empty", ""),
        ("nasbench101", "NB101: no op list", "010.001.000"),
        ("nasbench101", "NB101: matrix not square", "0101.001.000|input,conv3x3-bn-relu,output"),
        ("nasbench101", "NB101: unknown op", "010.001.000|input,conv7x7,output"),
        ("nasbench101", "NB101: no input-output path", "000.000.000|input,conv3x3-bn-relu,output"),
        ("nasbench101", "NB101: cycle (lower triangle)", "010.101.000|input,conv3x3-bn-relu,output"),
        ("nasbench101", "NB101: too many nodes", "0" * 8 + "|" + ",".join(["input"] + ["conv3x3-bn-relu"] * 6 + ["output"])),
        ("fbnet", "FBNet: empty", ""),
        ("fbnet", "FBNet: unknown block", "k9_e9-" * 21 + "k3_e1"),
        ("fbnet", "FBNet: too few blocks", "k3_e1-k3_e1"),
        ("fbnet", "FBNet: too many blocks", "-".join(["k3_e1"] * 30)),
        ("ofa_mbv3", "OFA: empty", ""),
        ("ofa_mbv3", "OFA: kernel size 9", "ks=9" + ",3" * 19 + ";e=" + ",".join(["3"] * 20) + ";d=2,2,2,2,2;r=224"),
        ("ofa_mbv3", "OFA: depth 7", "ks=" + ",".join(["3"] * 20) + ";e=" + ",".join(["3"] * 20) + ";d=7,2,2,2,2;r=224"),
        ("ofa_mbv3", "OFA: resolution 3", "ks=" + ",".join(["3"] * 20) + ";e=" + ",".join(["3"] * 20) + ";d=2,2,2,2,2;r=3"),
        ("ofa_mbv3", "OFA: missing key", "ks=" + ",".join(["3"] * 20) + ";d=2,2,2,2,2;r=224"),
        ("ofa_mbv3", "OFA: non-numeric", "ks=a,b;e=c;d=d;r=r"),
    ]:
        api("arch strings", kind, _arch(space, arch), "")

    # checkpoints
    for kind, name, frag in [
        ("checkpoint: missing file", "no_such.pt", "neither a checkpoint file nor a pretrained name"),
        ("checkpoint: empty .pt", "empty.pt", "the file is empty"),
        ("checkpoint: truncated .pt", "truncated.pt", "truncated, corrupt"),
        ("checkpoint: random bytes", "garbage.pt", "truncated, corrupt"),
        ("checkpoint: a text file", "text.pt", "truncated, corrupt"),
        ("checkpoint: untagged torch file", "untagged.pt", "not a nas-predictor checkpoint"),
        ("checkpoint: unknown version", "version99.pt", "unsupported checkpoint version"),
        ("checkpoint: embedded config not JSON", "badconfig.pt", "bad embedded config"),
        ("checkpoint: pickled Python object (unsafe)", "unsafe.pt", "truncated, corrupt, or not a nas-predictor"),
        ("checkpoint: NaN weights", "nan_weights.pt", "NaN or infinite value"),
        ("checkpoint: infinite weights", "inf_weights.pt", "NaN or infinite value"),
        ("checkpoint: a folder", "dir.pt", "is a folder, not a checkpoint file"),
        ("checkpoint: an ONNX-named checkpoint file", "tiny.onnx", "cannot read checkpoint"),
    ]:
        cli("checkpoints", kind, ["predict", name, "--arch", NB201_ARCH], frag)
    cli("checkpoints", "evaluate with a NaN-weight checkpoint", ["evaluate", "nan_weights.pt", "--json"],
        "NaN or infinite value")
    cli("checkpoints", "latency with an accuracy predictor", ["latency", "tiny.onnx", "--predictor", "nb201-accuracy"],
        "not a latency predictor", owner=OWNERS["latency"])
    cli("checkpoints", "unknown pretrained name", ["predict", "nb999-accuracy", "--arch", NB201_ARCH],
        "neither a checkpoint file nor a pretrained name")
    api("checkpoints", "API: NaN weights refused at load", _predict_api("nan_weights.pt"), "NaN or infinite value")
    api("checkpoints", "API: empty .pt", _predict_api("empty.pt"), "the file is empty")
    cli("predictions", "predict: valid arch gives finite JSON", ["predict", "nb201-accuracy", "--arch", NB201_ARCH,
                                                                "--json"], expect=R, check=finite_json)
    api("predictions", "API: model gone NaN in memory", _nan_in_memory_prediction, "not finite")
    api("predictions", "API: latency of a graph with 1e30 FLOPs", _huge_graph_latency, expect=R)

    # predict inputs
    cli("predict inputs", "--archs-file missing", ["predict", "nb201-accuracy", "--archs-file", "nope.txt"],
        "--archs-file 'nope.txt': cannot read it")
    cli("predict inputs", "--archs-file empty", ["predict", "nb201-accuracy", "--archs-file", "archs_empty.txt"],
        "holds no architecture")
    cli("predict inputs", "--archs-file with one bad line", ["predict", "nb201-accuracy", "--archs-file",
                                                              "archs_bad.txt"], "NAS-Bench-201")
    cli("predict inputs", "--archs-file binary", ["predict", "nb201-accuracy", "--archs-file", "archs_binary.txt"],
        "cannot read it")
    cli("predict inputs", "--archs-file is a folder", ["predict", "nb201-accuracy", "--archs-file", "dir.pt"],
        "cannot read it")
    cli("predict inputs", "no --arch at all", ["predict", "nb201-accuracy"], "give at least one --arch")
    cli("predict inputs", "--device cuda without a GPU", ["predict", "nb201-accuracy", "--arch", NB201_ARCH,
                                                          "--device", "cuda"], "torch sees no CUDA GPU")
    cli("predict inputs", "--device tpu", ["predict", "nb201-accuracy", "--arch", NB201_ARCH, "--device", "tpu"],
        "invalid choice")
    cli("predict inputs", "unknown command", ["frobnicate"], "invalid choice")
    cli("predict inputs", "unknown flag", ["predict", "nb201-accuracy", "--arch", NB201_ARCH, "--fast"],
        "unrecognized arguments")

    # ONNX files (the reader: nas_predictor/onnx; the command: latency)
    for kind, name, frag in [
        ("ONNX: missing file", "no_such.onnx", "no_such.onnx"),
        ("ONNX: empty file", "empty.onnx", "empty.onnx"),
        ("ONNX: truncated", "truncated.onnx", "truncated.onnx"),
        ("ONNX: text file", "text.onnx", "text.onnx"),
        ("ONNX: PNG bytes", "png.onnx", "png.onnx"),
        ("ONNX: a torch checkpoint", "checkpoint.onnx", "checkpoint.onnx"),
        ("ONNX: unknown op type", "unknown_op.onnx", "FrobnicateV9"),
        ("ONNX: graph without nodes", "no_nodes.onnx", "no_nodes.onnx"),
        ("ONNX: a folder", "dir.pt", "dir.pt"),
    ]:
        # without --json: there the errors are entries of the JSON's "errors", here one stderr line each
        cli("onnx files", kind, ["latency", name, "--predictor", "latency-help-b1"], frag, owner=OWNERS["latency"])
    for kind, name, frag in [
        ("ONNX API: empty file", "empty.onnx", "empty.onnx"),
        ("ONNX API: truncated", "truncated.onnx", "truncated.onnx"),
        ("ONNX API: PNG bytes", "png.onnx", "png.onnx"),
        ("ONNX API: unknown op type", "unknown_op.onnx", "FrobnicateV9"),
        ("ONNX API: graph without nodes", "no_nodes.onnx", ""),
    ]:
        api("onnx files", kind, _onnx_api(name), frag, owner=OWNERS["onnx"])
    cli("onnx files", "ONNX: dynamic H and W", ["latency", "dynamic_hw.onnx", "--predictor", "latency-help-b1"],
        "dynamic_hw.onnx", owner=OWNERS["latency"])
    cli("onnx files", "latency: valid tiny ONNX gives finite JSON",
        ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--json"], expect=R, check=finite_json,
        owner=OWNERS["latency"])
    for kind, name, frag in [
        ("measure: missing file", "no_such.onnx", "no_such.onnx"),
        ("measure: empty file", "empty.onnx", "empty.onnx"),
        ("measure: truncated", "truncated.onnx", "truncated.onnx"),
        ("measure: unknown op type", "unknown_op.onnx", "unknown_op.onnx"),
    ]:
        cli("onnx files", kind, ["measure", name], frag, owner=OWNERS["measure"])

    # graphs through the API
    for kind, kwargs, frag in [
        ("graph: no nodes", {"ops": (), "edges": ()}, "empty graph"),
        ("graph: dangling edge", {"ops": ("a", "b"), "edges": ((0, 5),)}, "missing node"),
        ("graph: self loop", {"ops": ("a",), "edges": ((0, 0),)}, "self loop"),
        ("graph: empty op name", {"ops": ("",), "edges": ()}, "non-empty string"),
        ("graph: NaN FLOPs", {"ops": ("a",), "edges": (), "scalars": {"flops": math.nan}}, ""),
        ("graph: shapes of the wrong length", {"ops": ("a", "b"), "edges": (), "shapes": ((1,),)}, "shapes has 1"),
    ]:
        api("graphs", kind, _graph(**kwargs), frag, owner="nas_predictor/graph.py")

    # training configs
    for kind, name, frag in [
        ("config: missing file", "no_such.yaml", "not found"),
        ("config: YAML syntax error", "cfg_syntax.yaml", "not valid YAML"),
        ("config: top level is a list", "cfg_list.yaml", "top level must be a mapping"),
        ("config: top level is a number", "cfg_scalar.yaml", "top level must be a mapping"),
        ("config: unknown top-level key", "cfg_unknown_key.yaml", "unknown config key 'trian'"),
        ("config: unknown nested key", "cfg_unknown_nested.yaml", "unknown config key 'train.epocs'"),
        ("config: wrong type", "cfg_type.yaml", "'train.epochs'"),
        ("config: negative epochs", "cfg_negative.yaml", "'train.epochs'"),
        ("config: zero batch size", "cfg_zero_batch.yaml", "'train.batch_size'"),
        ("config: lr NaN", "cfg_lr_nan.yaml", "'train.lr'"),
        ("config: lr infinite", "cfg_lr_inf.yaml", "'train.lr'"),
        ("config: lr negative", "cfg_lr_negative.yaml", "'train.lr'"),
        ("config: unknown benchmark", "cfg_benchmark.yaml", "'data.benchmark'"),
        ("config: unknown split", "cfg_split.yaml", "'data.split'"),
        ("config: unknown device", "cfg_device.yaml", "'train.device'"),
        ("config: section given a number", "cfg_section_scalar.yaml", "'train'"),
        ("config: tab indentation", "cfg_tab.yaml", "not valid YAML"),
        ("config: negative seed", "cfg_seed.yaml", "'train.seed'"),
        ("config: zero label scale", "cfg_label_scale.yaml", "'data.label_scale'"),
        ("config: binary file", "cfg_binary.yaml", "cfg_binary.yaml"),
        ("config: a folder", "dir.pt", "dir.pt"),
    ]:
        cli("configs", kind, ["train", name, "--out", f"out_cfg_{len(c)}", "--quiet"], frag)
    for kind, sets, frag in [
        ("--set without '='", ["train.epochs"], "--set expects key=value"),
        ("--set unclosed list", ["key=[1"], "not valid YAML"),
        ("--set empty key part", ["train..epochs=3"], "dotted names"),
        ("--set into a scalar", ["name.sub=3"], "is not a section"),
        ("--set unknown key", ["train.epocs=3"], "unknown config key 'train.epocs'"),
        ("--set epochs=abc", ["train.epochs=abc"], "'train.epochs'"),
        ("--set lr=.nan", ["train.lr=.nan"], "'train.lr'"),
        ("--set ensemble=0", ["train.ensemble=0"], "'train.ensemble'"),
        ("--set model.hidden=-64", ["model.hidden=-64"], "model.hidden"),
    ]:
        cli("configs", kind, ["train", "ok.yaml", "--quiet", "--out", "out_set", *sum((["--set", s] for s in sets), [])],
            frag)
    api("configs", "API: config tree with a list section", _config_api({"train": [1, 2]}), "'train'")
    api("configs", "API: config tree with a NaN warmup", _config_api({"train": {"warmup_fraction": math.nan}}),
        "warmup_fraction")
    cli("configs", "train: --data-dir missing", ["train", "ok.yaml", "--quiet", "--out", "out_dd", "--data-dir",
                                                "no_such_dir"], "not a directory")
    cli("configs", "train: NaN label in the data", ["train", "ok.yaml", "--quiet", "--out", "out_nan", "--data-dir",
                                                   "data_nan_label"], "non-finite")

    # numeric flags of every command
    def flag(cmd: list[str], name: str, value: str, frag: str) -> None:
        # "-inf" is not a number to argparse's eye: it would read it as an option; name=value is unambiguous
        cli("numeric flags", f"{cmd[0]} {name} {value}", [*cmd, f"{name}={value}"], frag)

    for value, frag in (("0", "must be at least 1"), ("-5", "must be at least 1"), ("abc", "expected an integer"),
                        ("nan", "expected an integer"), ("1e9999", "expected an integer")):
        flag(["evaluate", "nb201-accuracy"], "--batch-size", value, frag)
    for name, value, frag in [("--hidden", "0", "at least 1"), ("--blocks", "-1", "at least 1"),
                              ("--epochs", "0", "at least 1"), ("--batch-size", "1", "at least 2"),
                              ("--lr", "0", "above 0"), ("--lr", "nan", "finite"), ("--lr", "inf", "finite"),
                              ("--lambda-sr", "-1", "at least 0"), ("--seed", "-1", "at least 0"),
                              ("--max-archs", "-5", "at least 0"), ("--hidden", "abc", "expected an integer")]:
        flag(["distill", "nb201-accuracy", "--out", "out_distill"], name, value, frag)
    for value, frag in (("0", "batch"), ("-1", "batch"), ("abc", "integer"), ("nan", "integer")):
        cli("numeric flags", f"latency --batch {value}",
            ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--batch", value], frag, owner=OWNERS["latency"])
    for value, frag in (("0", "max"), ("-1", "max"), ("nan", "max"), ("inf", "max"), ("abc", "max")):
        cli("numeric flags", f"latency --max-ms {value}",
            ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--max-ms", value], frag,
            owner=OWNERS["latency"])
    for name, value, frag in [("--batch", "0", "at least 1"), ("--batch", "abc", "expected an integer"),
                              ("--core", "-2", "at least -1"), ("--core", "abc", "expected an integer"),
                              ("--core", "9999", "9999")]:
        cli("numeric flags", f"measure {name} {value}", ["measure", "tiny.onnx", name, value], frag,
            owner=OWNERS["measure"] if name == "--core" and value == "9999" else "cli/search")
    se = ["search", "--out", "out_flags", "--quiet"]
    for name, value, frag in [("--budget", "0", "at least 1"), ("--budget", "-1", "at least 1"),
                              ("--budget", "abc", "expected an integer"), ("--budget", "2.5", "expected an integer"),
                              ("--max-latency-ms", "0", "above 0"), ("--max-latency-ms", "-1", "above 0"),
                              ("--max-latency-ms", "nan", "finite"), ("--max-latency-ms", "inf", "finite"),
                              ("--seed", "-1", "at least 0"), ("--seed", "abc", "expected an integer"),
                              ("--target", "nan", "finite"), ("--target", "inf", "finite"),
                              ("--target", "-inf", "finite"), ("--target", "abc", "expected a number"),
                              ("--top", "0", "at least 1")]:
        flag(se, name, value, frag)

    # search: the data the user named
    sd = ["search", "--budget", "3", "--quiet", "--json", "--strategy", "random"]
    for kind, extra, env, frag in [
        ("--data-dir missing", ["--data-dir", "no_such_dir"], {}, "--data-dir 'no_such_dir' is not a directory"),
        ("--data-dir is a file", ["--data-dir", "data_file"], {}, "is not a directory"),
        ("--data-dir empty folder", ["--data-dir", "data_empty"], {}, "NAS-Bench-201 table not found"),
        ("--data-dir CSV header only", ["--data-dir", "data_header_only"], {}, "expected 15625 rows"),
        ("--data-dir CSV truncated", ["--data-dir", "data_truncated"], {}, "expected 15625 rows"),
        ("--data-dir CSV NaN label", ["--data-dir", "data_nan_label"], {}, "non-finite value"),
        ("--data-dir CSV text label", ["--data-dir", "data_text_label"], {}, "'ninety' is not a number"),
        ("--data-dir CSV missing column", ["--data-dir", "data_missing_column"], {}, "no column 'c10valid_valid_200ep'"),
        ("--data-dir CSV without arch column", ["--data-dir", "data_no_arch_column"], {}, "'arch_str' column"),
        ("$NAS_PREDICTOR_DATA missing", [], {"NAS_PREDICTOR_DATA": "no_such_env_dir"}, "$NAS_PREDICTOR_DATA"),
        ("$NAS_PREDICTOR_DATA NaN label", [], {"NAS_PREDICTOR_DATA": "data_nan_label"}, "$NAS_PREDICTOR_DATA"),
        ("--table-file missing", ["--table-file", "no_such.pth"], {}, "no_such.pth"),
        ("--table-file empty", ["--table-file", "table_empty.pth"], {}, "table_empty.pth"),
        ("--table-file random bytes", ["--table-file", "table_garbage.pth"], {}, "table_garbage.pth"),
        ("--table-file unsafe pickle", ["--table-file", "table_unsafe.pth"], {}, "refusing to load"),
        ("--table-file wrong content", ["--table-file", "table_wrong.pth"], {}, "table_wrong.pth"),
        ("latency bound with a --data-dir lacking HELP's tables",
         ["--data-dir", "data_nan_label", "--oracle", "predictor", "--max-latency-ms", "5", "--setting",
          "titan_rtx_1"], {}, "latency data you named"),
    ]:
        cli("search data", kind, sd + ["--out", f"out_sd_{len(c)}", *extra], frag, env=env)
    cli("search data", "--oracle table on NB201 with --data-dir given: real values used",
        sd + ["--out", "out_sd_ok", "--data-dir", "{data}", "--oracle", "table"], expect=R,
        check=search_summary(3, lambda s: "; the table oracle ran (" + s["oracle"][:40] + "...)"
                             if "table" in s["oracle"] else (_ for _ in ()).throw(AssertionError(s["oracle"]))))

    # search configuration
    for kind, sets, frag in [
        ("top_k=abc", ["strategy_params.top_k=abc"], "strategy_params.top_k of predictor must be an integer"),
        ("top_k=-2", ["strategy_params.top_k=-2"], "strategy_params.top_k of predictor must be at least 1"),
        ("top_k=0", ["strategy_params.top_k=0"], "must be at least 1"),
        ("top_k=1.5", ["strategy_params.top_k=1.5"], "must be an integer"),
        ("num_init=-1", ["strategy_params.num_init=-1"], "num_init"),
        ("skip_equivalent=maybe", ["strategy_params.skip_equivalent=maybe"], "true or false"),
        ("unknown strategy param", ["strategy_params.topk=3"], "topk"),
        ("acquisition=best", ["strategy_params.acquisition=best"], "acquisition"),
        ("surrogate_params.steps=0", ["surrogate_params.steps=0"], "surrogate_params.steps"),
        ("surrogate_params.ensemble=abc", ["surrogate_params.ensemble=abc"], "surrogate_params.ensemble"),
        ("--set budget=.nan", ["budget=.nan"], "'budget'"),
        ("--set target=.inf", ["target=.inf"], "'target'"),
        ("--set seed=-1", ["seed=-1"], "'seed'"),
        ("--set key=[1", ["key=[1"], "not valid YAML"),
        ("--set unknown key", ["bugdet=3"], "unknown config key 'bugdet'"),
        ("--set strategy_params=3", ["strategy_params=3"], "strategy_params"),
    ]:
        cli("search config", kind, ["search", "--out", f"out_sc_{len(c)}", "--quiet", *sum((["--set", s] for s in sets), [])],
            frag)
    for kind, argv, frag in [
        ("evolution population=0", ["--strategy", "evolution", "--set", "strategy_params.population=0"], "population"),
        ("evolution sample_size > population", ["--strategy", "evolution", "--set", "strategy_params.sample_size=50"],
         "sample_size"),
        ("tpe num_candidates=abc", ["--strategy", "tpe", "--set", "strategy_params.num_candidates=abc"], "num_candidates"),
        ("--guided with random", ["--strategy", "random", "--guided"], "guided"),
        ("bound without a device", ["--max-latency-ms", "5"], "latency_setting"),
        ("unknown latency device", ["--max-latency-ms", "5", "--setting", "abacus_1", "--oracle", "predictor"],
         "abacus_1"),
        ("search config file with a bad value", ["search_bad.yaml"], "'budget'"),
        ("search config file with an unknown key", ["search_unknown.yaml"], "strategy_paramz"),
        ("search config file missing", ["no_such_search.yaml"], "not found"),
        ("--space nb999", ["--space", "nb999"], "invalid choice"),
        ("--out is a file", ["--out", "data_file"], "is a file"),
        ("FBNet search from the CLI (no oracle)", ["--space", "fbnet"], "no shipped accuracy predictor"),
        ("NB101 search without a table", ["--space", "nb101"], "nasbench_only108.tfrecord"),
    ]:
        argv = ["search", "--out", f"out_sx_{len(c)}", "--quiet", *argv] if "--out" not in argv else \
            ["search", "--quiet", *argv]
        cli("search config", kind, argv, frag)
    cli("search config", "main job: search --budget 30 --quiet (predictions)",
        ["search", "--budget", "30", "--quiet", "--json", "--out", "out_main"], expect=R, check=search_summary(30))

    # oracles (Python API)
    api("oracles", "oracle returns 0 for every architecture", _search(lambda a: 0.0, expect_failed=0), expect=R)
    api("oracles", "oracle returns negative values (negated losses)",
        _search(lambda a: -1.0 - (sum(map(ord, a)) % 97) / 97, expect_failed=0), expect=R)
    api("oracles", "oracle returns values around zero", _search(lambda a: (sum(map(ord, a)) % 97) / 97 - 0.5,
                                                                expect_failed=0), expect=R)
    api("oracles", "oracle returns huge values", _search(lambda a: 1e12 * (1 + (sum(map(ord, a)) % 97)),
                                                         expect_failed=0), expect=R)
    api("oracles", "oracle raises on some architectures",
        _search(lambda a: 1 / 0 if "none~0|+" in a else 50.0 + (sum(map(ord, a)) % 97) / 10), expect=R)
    api("oracles", "oracle returns NaN", _oracle_error(math.nan), "returned the value nan for")
    api("oracles", "oracle returns +inf", _oracle_error(math.inf), "returned the value inf for")
    api("oracles", "oracle returns -inf", _oracle_error(-math.inf), "returned the value -inf for")
    api("oracles", "oracle returns a string", _oracle_error("good"), "not a number")
    api("oracles", "oracle returns None", _oracle_error(None), "not a number")
    api("oracles", "oracle report holds NaN", _oracle_error((90.0, {"test_accuracy": math.nan})),
        "reported test_accuracy=nan")
    api("oracles", "oracle report holds a string", _oracle_error((90.0, {"note": "fine"})), "reported note='fine'")
    api("oracles", "strategy param top_k=-2 (API)", _strategy_api("predictor", top_k=-2), "top_k")
    api("oracles", "strategy param population='many' (API)", _strategy_api("evolution", population="many"),
        "population")

    # calibration files for latency --calibrate (nas_predictor/calibration.py, data/timings.py)
    for kind, name, frag in [
        ("calibration: missing file", "no_such.csv", "no_such.csv"),
        ("calibration: empty file", "cal_empty.csv", "cal_empty.csv"),
        ("calibration: NaN ms", "cal_nan.csv", "cal_nan.csv"),
        ("calibration: negative ms", "cal_negative.csv", "cal_negative.csv"),
        ("calibration: zero ms", "cal_zero.csv", "cal_zero.csv"),
        ("calibration: text ms", "cal_text.csv", "cal_text.csv"),
        ("calibration: missing model", "cal_missing_model.csv", "no_such_model.onnx"),
        ("calibration: truncated JSON", "cal_bad.json", "cal_bad.json"),
        ("calibration: Infinity in JSON", "cal_inf.json", "cal_inf.json"),
    ]:
        cli("calibration", kind, ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--calibrate", name],
            frag, owner=OWNERS["calibration"])
    cli("calibration", "search --latency-calibrate with NaN ms",
        ["search", "--out", "out_cal", "--quiet", "--oracle", "predictor", "--max-latency-ms", "5",
         "--setting", "titan_rtx_1", "--latency-calibrate", "cal_nan.csv"], "cal_nan.csv",
        owner=OWNERS["calibration"])

    # two processes on one output folder, API and CLI
    api("concurrency", "run_search on a folder another process holds", _lock_api, "in use by another process")
    c.append(Case("concurrency", "two search processes on one --out", "error", argv=["<concurrent>"],
                  fragment="in use by another process"))
    return c


