"""Every script in bench/ runs, at a tiny size (issue 23 item 7: benchmarks that cannot rot).

Each Python bench runs as a subprocess from the project root, the way its docstring and
bench/README.md call it (PYTHONPATH=src, one thread), on the 400+200-row sample or a folder
prepared from it, with tiny model sizes, one epoch and a handful of steps, and its printed
figures are checked for their documented shape: the tables' header, separator and rows, numbers
where numbers belong; timings are never compared. A bench that reads generated files
(early_stopping.py) gets tiny ones. The shell scripts (bench/cuda.sh, bench/complete_ladder.sh)
pass `bash -n`, and every Python script, `python -m agnews` command, subcommand and flag that
they, bench/README.md or the benches' docstrings name exists (checked against its `--help`, in
one process), with `--set` keys in params.yaml, `--presets` in presets.yaml and `dvc repro`
stages in dvc.yaml.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import pytest
import yaml
from helpers import ROOT, SAMPLE_DIR

BENCH = ROOT / "bench"
# tiny sizes for every model a bench trains, one epoch (a preset's own values are overridden)
TINY_SETS = [
    "model.embedding_dim=8",
    "model.hidden_size=8",
    "model.head_hidden=8",
    "model.flatten_dim=8",
    "train.epochs=1",
    "train.log_every=2",
]
NUMBER = r"[-+−]?[\d,]+(?:\.\d+)?"


def set_args(sets: list[str]) -> list[str]:
    return [arg for s in sets for arg in ("--set", s)]


def run_bench(*argv: str, timeout: int = 300) -> str:
    """Run `python bench/...` (or `python -c ...`) from the root; its stdout; fails on exit != 0.
    The temporary folders a bench makes for itself go into one removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="test-bench-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=ROOT,
            env={**env, "TMPDIR": tmp},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert done.returncode == 0, (
        f"{argv[:2]} exited {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


def table(out: str, header: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table in `out` whose header line starts with `header`;
    the separator and every row have as many cells as the header."""
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert starts, f"no table {header!r} in:\n{out}"
    first = starts[0]
    width = lines[first].count("|")
    assert re.fullmatch(r"\|(-*:?-+:?\|)+", lines[first + 1]), lines[first + 1]
    assert lines[first + 1].count("|") == width, (lines[first], lines[first + 1])
    rows = []
    for line in lines[first + 2 :]:
        if not line.startswith("| "):
            break
        assert line.count("|") == width, (lines[first], line)
        rows.append([c.strip() for c in line.strip("|").split("|")])
    assert rows, f"table {header!r} has no rows:\n{out}"
    return rows


def is_number(cell: str) -> bool:
    return re.fullmatch(NUMBER, cell) is not None


def is_fraction(value: float) -> bool:
    return 0.0 <= value <= 1.0


# --- the Python benches, each at a tiny size ------------------------------------------------


def test_throughput_tiny():
    out = run_bench(
        "bench/throughput.py", "--data-dir", str(SAMPLE_DIR), "--device", "cpu",
        "--batches", "1", "--repeats", "1", "--warmup", "1", "--size", "8",
        "--batch-sizes", "32,64",
    )  # fmt: skip
    assert re.search(r"^device: cpu \(.*\), torch \S+, threads 1$", out, re.M), out
    assert "data: 400 real AG News train rows from" in out
    header = "| model | batch | notebook samples/s | ours samples/s | ratio | padded/real tokens |"
    rows = table(out, header)
    assert [r[:2] for r in rows] == [[f"{c} 8", b] for c in ("rnn", "gru") for b in ("32", "64")]
    for _, _, nb, ours, ratio, padding in rows:
        assert is_number(nb) and is_number(ours), rows
        assert re.fullmatch(rf"{NUMBER}x", ratio), ratio
        assert re.fullmatch(r"\d+\.\d\d \(nb\) vs \d+\.\d\d", padding), padding
    rows = table(out, "| prepare tokenization |")
    assert [r[0] for r in rows] == ["600 real texts here", "4,200 x7, full-size"]
    assert all(is_number(c) for r in rows for c in r[1:]), rows


def test_full_data_tiny(tmp_path):
    out = run_bench(
        "bench/full_data.py", "--data-dir", str(SAMPLE_DIR), "--rows", "480",
        "--keep", str(tmp_path), *set_args([*TINY_SETS, "prepare.min_count=1"]),
    )  # fmt: skip
    assert out.startswith("rows: 480 train (cycled), data ")
    stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"])
    lines = out.splitlines()
    timed = [line for line in lines if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in timed] == [*stages, "all stages"]
    for line in timed:
        assert re.match(rf"\| [\w ]+ \| {NUMBER} s \|", line), line
    assert re.search(
        rf"^train: {NUMBER} s in the loop, {NUMBER} samples/s on \S+, 1 epochs; fixed costs "
        rf"\(all stages minus the training loop\): {NUMBER} s$",
        out,
        re.M,
    ), out
    with gzip.open(tmp_path / "csv" / "train.csv.gz", "rt", encoding="utf-8") as f:
        assert sum(1 for _ in f) == 480  # the 400 sample rows, cycled


def test_ladder_time_tiny(tmp_path):
    jsonl = tmp_path / "rows.jsonl"
    out = run_bench(
        "bench/ladder_time.py", "--data-dir", str(SAMPLE_DIR), "--presets", "rnn_max,gru_max",
        "--out", str(jsonl), *set_args([*TINY_SETS, "prepare.min_count=1"]),
    )  # fmt: skip
    rows = table(out, "| preset | epochs | train s | wall s | samples/s | best val |")
    assert [r[:2] for r in rows] == [["rnn_max", "1"], ["gru_max", "1"]]
    for row in rows:
        assert all(is_number(c) for c in row[1:]), row
        assert is_fraction(float(row[5]))
    assert re.search(rf"^whole ladder: {NUMBER} s wall \({NUMBER} min\), {NUMBER} s training$",
                     out, re.M), out  # fmt: skip
    written = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["preset"] for r in written] == ["rnn_max", "gru_max"]
    assert {r["device"] for r in written} <= {"cpu", "cuda"}


def test_linear_peers_tiny():
    out = run_bench("bench/linear_peers.py", "--data-dir", str(SAMPLE_DIR))
    assert re.search(r"^data: 360 train / 40 validation / 200 test rows from ", out, re.M), out
    rows = table(out, "| model | fitted on | validation acc | test acc |")
    assert [r[1] for r in rows] == ["train split", "all train rows"] * 2
    for _, fit_on, val, test in rows:
        assert is_fraction(float(test))
        assert val == "–" if fit_on == "all train rows" else is_fraction(float(val))


def test_paired_seeds_tiny():
    """The same checkout as before and after: the paired difference is exactly zero (CPU runs
    are deterministic, so the CPU even where there is a GPU)."""
    sets = [*TINY_SETS, "prepare.min_count=1", "train.device=cpu"]
    out = run_bench(
        "bench/paired_seeds.py", "--before", ".", "--after", ".", "--data-dir", str(SAMPLE_DIR),
        "--presets", "rnn_max", "--seeds", "53", *set_args(sets),
    )  # fmt: skip
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["code"], r["preset"], r["seed"]) for r in runs] == [
        ("before", "rnn_max", 53),
        ("after", "rnn_max", 53),
    ]
    assert all(is_fraction(r["val"]) and r["train_s"] >= 0 for r in runs)
    header = "| preset | seeds | val before | val after | paired difference (after - before) |"
    ((preset, seeds, before, after, diff),) = table(out, header)
    assert (preset, seeds) == ("rnn_max", "1")
    assert before == after == f"{100 * runs[0]['val']:.2f}"
    assert diff == "+0.00 (sd 0.00)"


def test_random_search_tiny(tmp_path):
    jsonl = tmp_path / "runs.jsonl"
    out = run_bench(
        "bench/random_search.py", "--data-dir", str(SAMPLE_DIR), "--runs", "2",
        "--out", str(jsonl), *set_args(TINY_SETS),
    )  # fmt: skip
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["run"] for r in runs] == [0, 1]
    for r in runs:
        assert is_fraction(r["val"])
        assert r["changes"]["model.hidden_size"] == 8 and r["changes"]["train.epochs"] == 1
        assert r["changes"]["model.cell"] in ("gru", "lstm")  # drawn from the grid
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 2
    ranked = re.findall(r"^val (\d\.\d{4})  \{", out, re.M)
    assert re.search(r"^2 runs on (cpu|cuda\S*), sorted by validation accuracy:$", out, re.M)
    assert [float(v) for v in ranked] == sorted((round(r["val"], 4) for r in runs), reverse=True)
    assert out.rstrip().splitlines()[-1].startswith("device ")


SPARSE_SETS = [*TINY_SETS, "model.ngram_dim=8", "train.batch_size=16"]


def test_sparse_ngrams_speed_tiny(tmp_path):
    out = run_bench(
        "bench/sparse_ngrams.py", "speed", "--data-dir", str(SAMPLE_DIR), "--work", str(tmp_path),
        "--steps", "3", "--window", "2", *set_args(SPARSE_SETS),
    )  # fmt: skip
    assert re.search(r"^threads 1, torch \S+$", out, re.M), out
    lines = [line for line in out.splitlines() if " params | steps 1-2: " in line]
    assert [line[:24].strip() for line in lines] == ["dense", "dense + flush_denormal", "sparse"]
    shape = (
        rf"^.{{24}} {NUMBER} params \| steps 1-2: +{NUMBER} ms/step \(optimizer +{NUMBER} ms\) "
        rf"\| steps 2-3: +{NUMBER} ms/step \(optimizer +{NUMBER} ms\)$"
    )
    assert all(re.match(shape, line) for line in lines), lines
    assert len({line.split(" params")[0][24:] for line in lines}) == 1  # the same model thrice


def test_sparse_ngrams_accuracy_tiny(tmp_path):
    out = run_bench(
        "bench/sparse_ngrams.py", "accuracy", "--data-dir", str(SAMPLE_DIR), "--work",
        str(tmp_path), "--seeds", "53", "--epochs", "1", "--against", "flush",
        "--out", str(tmp_path / "rows.jsonl"), *set_args(SPARSE_SETS),
    )  # fmt: skip
    header = "| seed | dense val % | flush val % | flush - dense | dense train s | flush train s |"
    rows = table(out, header)
    assert [r[0] for r in rows] == ["53"]
    assert all(is_number(c) for r in rows for c in r), rows
    assert re.search(
        rf"^paired difference \(flush - dense\): mean {NUMBER} points, sd {NUMBER}$", out, re.M
    ), out
    (line,) = (tmp_path / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    assert set(json.loads(line)) == {"seed", "dense", "flush"}


def test_early_stopping_on_tiny_recorded_curves(tmp_path):
    """Its inputs are a `dvc plots diff` page and the ladder report, both generated: tiny ones
    here, whose early-stopped figures are known."""
    presets = yaml.safe_load((ROOT / "presets.yaml").read_text(encoding="utf-8"))
    members = presets["wide_deep"]["params"]["train.ensemble"]
    curves = {
        "rnn_max": [0.5, 0.6, 0.59, 0.58, 0.7, 0.71],  # patience 2 stops at pass 4, keeps 0.6
        "wide_deep": [0.8, 0.81, 0.82, 0.83] * members,  # rises: never stops
    }
    values = [
        {"step": str(100 * (i + 1)), "val": str(v), "rev": name}
        for name, curve in curves.items()
        for i, v in enumerate(curve)
    ]
    loss = {"data": {"values": [{"step": "1", "val": "9", "rev": "rnn_max"}]},
            "title": {"text": "Training loss"}}  # fmt: skip
    acc = {"data": {"values": values}, "title": {"text": "Validation accuracy"}}
    page = f"<script>var spec = {json.dumps(loss)};</script><script>var spec = {json.dumps(acc)};"
    (tmp_path / "index.html").write_text(page + "</script>", encoding="utf-8")
    (tmp_path / "ladder.md").write_text(
        "# ladder\n\n| run | model | train s | test % |\n|---|---|---:|---:|\n"
        "| `rnn_max` | rnn max | 600 | 88.1 |\n| `wide_deep` | gru | 1200 | 91.0 |\n\nmore\n",
        encoding="utf-8",
    )
    out = run_bench(
        "bench/early_stopping.py", "--plots", str(tmp_path / "index.html"),
        "--report", str(tmp_path / "ladder.md"), "--patience", "2,4",
    )  # fmt: skip
    header = "| run | passes | stops at epoch | best val % without | with | kept − without |"
    assert out.count(header) == 2
    two, four = out.split("patience 4 (validation passes; 2 per epoch)")
    n = 4 * members
    assert table(two, header) == [
        ["rnn_max", "4/6", "2 of 3", "71.00", "60.00", "-11.00", "600.0", "400"],
        ["wide_deep", f"{n}/{n}", ", ".join(["2"] * members) + " of 2", "83.00", "83.00",
         "+0.00", "1200.0", "1200"],
    ]  # fmt: skip
    assert f"all runs: {4 + n}/{6 + n} validation passes" in two
    assert "training 1800 s -> 1600 s (11% saved); largest loss of best validation" in two
    assert "accuracy -11.00 points" in two
    assert table(four, header)[0][:6] == ["rnn_max", "6/6", "3 of 3", "71.00", "71.00", "+0.00"]


def test_cpu_agreement_tiny(prepared_dir):
    """One variant (each is the same code path in a fresh process); a CPU bench, so on the CPU
    even where there is a GPU."""
    out = run_bench(
        "bench/cpu_agreement.py", "--data", str(prepared_dir), "--variants", "default",
        "--threads", "1", *set_args([*TINY_SETS, "train.device=cpu"]),
    )  # fmt: skip
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["default"]
    shape = (
        r"^\w+ +val passes (?:[01]\.\d{4} ){2}\| weights [0-9a-f]{16} \| "
        rf"train {NUMBER} s \| torch CPU capability \w+$"
    )
    assert all(re.match(shape, line) for line in lines), lines


def test_baseline_seeds_tiny(prepared_dir, tmp_path):
    out = run_bench(
        "bench/baseline_seeds.py", "--data", str(prepared_dir),
        "--raw", str(prepared_dir.parent / "raw"), "--seeds", "53,1", "--threads", "1",
        "--out", str(tmp_path / "spread.json"), *set_args(TINY_SETS),
    )  # fmt: skip
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["seed"] for r in lines[:2]] == [53, 1]
    assert all(is_fraction(r["val_acc"]) and is_fraction(r["test_acc"]) for r in lines[:2])
    result = json.loads((tmp_path / "spread.json").read_text(encoding="utf-8"))
    assert lines[2] == {k: result[k] for k in ("test_acc", "val_acc")}
    tests = [r["test_acc"] for r in result["runs"]]
    assert result["test_acc"]["min"] == min(tests) and result["test_acc"]["max"] == max(tests)
    assert result["test_acc"]["sd"] >= 0 and result["threads"] == 1


def test_bf16_cpu_tiny(prepared_dir, tmp_path):
    """Its cells at tiny sizes, then --accuracy: one preset (the RNN, which autocast does run in
    bf16) at tiny sizes, one seed, two steps."""
    out = run_bench(
        "bench/bf16_cpu.py", "--repeats", "1", "--warmup", "0", "--batch", "4", "--tokens", "8",
        "--hidden", "8", "--accuracy", "--data-dir", str(prepared_dir), "--presets", "rnn_max",
        "--seeds", "53", "--steps", "2", "--epochs", "1", "--work", str(tmp_path),
        *set_args(TINY_SETS),
    )  # fmt: skip
    assert re.search(r"^cpu .*, torch kernels \w+, bf16 native (True|False) \(", out, re.M), out
    rows = table(out, "| cell | fp32 ms | bf16 ms | bf16 / fp32 | cell output under autocast |")
    assert [r[0] for r in rows] == ["lstm 2-layer bidirectional", "gru bidirectional", "gru", "rnn"]
    for row in rows:
        assert is_number(row[1]), row
        assert row[4].startswith(("torch.", "failed: ")), row  # the dtype, or oneDNN refused
    rows = table(out, "| preset | seed | fp32 val % | bf16 val % | bf16 - fp32 |")
    assert rows[0][:2] == ["rnn_max", "53"] and all(is_number(c) for c in rows[0][2:]), rows
    assert rows[1][:2] == ["rnn_max", "mean"] and rows[1][4] == rows[0][4], rows


# --- what the shell scripts and bench/README.md call ----------------------------------------

SHELL_SCRIPTS = ("cuda.sh", "complete_ladder.sh")


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_script_parses(script):
    done = subprocess.run(["bash", "-n", str(BENCH / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def shell_words(line: str) -> list[str]:
    """`line`'s words up to its first shell operator (pipe, redirection, `;`, `&&`)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if set(word) <= set("();<>|&"):
            if word[0] in "<>" and words and words[-1].isdigit():
                words.pop()  # the `2` of `2>&1`
            break
        words.append(word)
    return words


def commands(text: str) -> list[list[str]]:
    """The shell command lines in `text` (backslash continuations joined, comments dropped),
    each split into words, from its first `python`/`python3`/`dvc` word to its first shell
    operator."""
    out = []
    text = re.sub(r"\\+\n\s*", " ", text)  # (a docstring's continuations are `\\`)
    for line in text.splitlines():
        for part in [*re.findall(r"`([^`]+)`", line), line]:  # Markdown's inline code first
            part = re.sub(r"<(?!\()[^<>]*>", "PLACEHOLDER", part)  # `<checkout of X>`
            try:
                words = shell_words(part.strip())
            except ValueError:
                continue  # prose, not a command
            for i, word in enumerate(words):
                if word in ("python", "python3", "dvc") and i + 1 < len(words):
                    out.append(words[i:])
                    break
    return out


def invocations(text: str) -> list[tuple[str, list[str]]]:
    """(what, words after it) for each `python bench/X.py`, `python -m agnews CMD` and
    `python -m pytest` in `text`; `what` is the script's path or "agnews CMD"."""
    found = []
    for words in commands(text):
        if words[0] == "dvc":
            found.append(("dvc " + words[1], words[2:]))
        elif words[1].startswith("bench/") and words[1].endswith(".py"):
            found.append((words[1], words[2:]))
        elif words[1:3] == ["-m", "agnews"]:
            found.append((f"agnews {words[3]}", words[4:]))
        elif words[1:3] == ["-m", "pytest"]:
            found.append(("pytest", words[3:]))
        elif words[1] == "-c":
            found.append(("-c", words[2:3]))
    return found


HELP = r"""
import contextlib, io, json, re, runpy, sys
from agnews.__main__ import main

def help_of(argv):  # argv's `--help` text, or "!" and why there is none
    sys.argv = [argv[0], *argv[1:], "--help"]
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            if argv[0].startswith("bench/"):
                runpy.run_path(argv[0], run_name="__main__")
            else:
                main([*argv[1:], "--help"])
    except SystemExit as exit:
        if exit.code not in (0, None):
            return f"!exit {exit.code}: {buf.getvalue()[-500:]}"
    except Exception as exc:
        return f"!{type(exc).__name__}: {exc}"
    return buf.getvalue()

helps = {}
for what in json.loads(sys.argv[1]):
    argv = what.split()
    top = help_of(argv)
    helps[what] = {"": top}
    subs = re.match(r"usage: \S+(?: \[-h\])? \{([\w,-]+)\}", top)
    for sub in subs[1].split(",") if subs else []:  # subcommands: each one's own help
        helps[what][sub] = help_of([*argv, sub])
print(json.dumps(helps))
"""


def documented() -> dict[str, str]:
    """Where commands are written down: the shell scripts, bench/README.md, the benches'
    docstrings (name -> text)."""
    sources = {
        f"bench/{name}": (BENCH / name).read_text(encoding="utf-8") for name in SHELL_SCRIPTS
    }
    sources["bench/README.md"] = (BENCH / "README.md").read_text(encoding="utf-8")
    for path in sorted(BENCH.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        sources[f"bench/{path.name}"] = text[: text.find('"""', 3)]  # its docstring
    return sources


@pytest.fixture(scope="module")
def helps() -> dict[str, dict[str, str]]:
    """`--help` of every bench script and `python -m agnews` command written down anywhere (and
    of each subcommand), in one process: what -> {"": its help, subcommand: that one's help}."""
    whats = {w for text in documented().values() for w, _ in invocations(text)}
    whats = sorted(w for w in whats if w.startswith(("bench/", "agnews ")))
    out = run_bench("-c", HELP, json.dumps(whats))
    return json.loads(out.splitlines()[-1])


def check_invocation(what: str, words: list[str], helps: dict) -> None:
    if what.startswith("dvc "):  # DVC's own commands; `dvc repro STAGE`'s stage must exist
        stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
        if what == "dvc repro":
            assert all(w in stages for w in words if not w.startswith("-")), (what, words)
        return
    if what == "pytest":
        declared = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        for i, word in enumerate(words):
            if word == "-m":
                for marker in re.findall(r"\w+", words[i + 1]):
                    assert marker in ("not", "and", "or") or f'"{marker}:' in declared, marker
        assert (ROOT / words[-1]).is_dir(), words
        return
    if what == "-c":
        compile(words[0], "<python -c>", "exec")
        return
    assert what in helps, f"{what}: no such bench script or python -m agnews command"
    sub = words[0] if words and words[0] in helps[what] else ""
    text = helps[what][sub]
    assert not text.startswith("!"), f"{what} {sub} --help: {text[1:]}"
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    presets = yaml.safe_load((ROOT / "presets.yaml").read_text(encoding="utf-8"))
    for word, value in zip(words, [*words[1:], ""][: len(words)], strict=True):
        optional = word.startswith("[")  # a usage line's `[--flag VALUE]`: VALUE is a stand-in
        flag, _, inline = word.lstrip("[").partition("=")
        if not flag.startswith("--"):
            continue
        value = inline or value
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (what, sub, flag)
        if optional:
            continue
        choices = re.search(rf"{re.escape(flag)} \{{([^}}]+)\}}", text)
        if choices and not value.startswith("$"):
            assert value in choices[1].split(","), (what, flag, value)
        if flag == "--set":  # a params.yaml key
            section, _, key = value.partition("=")[0].partition(".")
            assert key in params.get(section, {}), (what, flag, value)
        if flag in ("--preset", "--presets"):
            assert set(value.split(",")) <= set(presets), (what, flag, value)


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_script_calls_exist(script, helps):
    found = invocations((BENCH / script).read_text(encoding="utf-8"))
    assert found, script
    for what, words in found:
        check_invocation(what, words, helps)


def test_shell_scripts_call_what_they_should():
    """The parsing above sees the commands: cuda.sh's six sections, complete_ladder.sh's seven."""
    cuda = [w for w, _ in invocations((BENCH / "cuda.sh").read_text(encoding="utf-8"))]
    assert cuda == ["-c", "bench/throughput.py", "bench/full_data.py", "bench/full_data.py",
                    "bench/full_data.py", "pytest", "bench/ladder_time.py"]  # fmt: skip
    ladder = [w for w, _ in invocations((BENCH / "complete_ladder.sh").read_text("utf-8"))]
    assert ladder == [*["agnews ladder"] * 4, "dvc repro", "agnews peers", "agnews ladder"]


def test_readme_and_docstring_commands_exist(helps):
    """Every `python bench/X.py ...` and `python -m agnews ...` line of bench/README.md and of
    the benches' own docstrings names a script, subcommand and flags that exist."""
    sources = documented()
    for name, text in sources.items():
        if name.endswith(".sh"):
            continue  # test_shell_script_calls_exist
        for what, words in invocations(text):
            if what in ("-c", "pytest"):
                continue
            try:
                check_invocation(what, words, helps)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from None
    for script in re.findall(r"bench/[\w.]+\.(?:py|sh)", sources["bench/README.md"]):
        assert (ROOT / script).is_file(), script
