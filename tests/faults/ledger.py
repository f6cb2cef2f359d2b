"""The reliability ledger: what the fault and bad-input tests tried, and what came through.

Tests record into one process-wide `LEDGER`; the first record registers a small pytest plugin
whose `pytest_terminal_summary` prints the figures at the end of the run (with or without `-s`).
Import it as `faults.ledger` everywhere (the `tests` folder is on sys.path), so there is one copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Defects this sweep found, and where each was fixed (file: what). Kept here so the summary and
# docs/reliability.md say the same thing.
DEFECTS_FIXED: list[str] = [
    "a missing or broken manifest printed a Python traceback: data/manifest.py, ManifestError is a UserError (720d5f3)",
    "an unsafe video/teacher id in a manifest or option printed a traceback: data/store.py, UnsafeName is a UserError (59fcdd3)",
    "--run ../../x wrote outside the workspace: data/store.py run_dir() used by train/run.py, report/page.py, "
    "eval/evaluate.py (7908823)",
    "a store video folder symlinked out of the workspace was written through: data/store.py Store.video_dir (59fcdd3)",
    "a full or read-only disk printed a traceback and an OSError naming no file: data/store.py names the file "
    "(59fcdd3, b2a5316), cli.py prints a clear error (b398d3d)",
    "a torn last jsonl line (disk full mid-write) swallowed the next verdict/status line: data/store.py append_line, "
    "used by teacher/store.py (58ea4d6) and extract/runner.py (836634a)",
    "a kill -9 between the optimizer file and state.json resumed training with the next epoch's Adam "
    "moments (predictions differed): train/module.py + train/stages.py, optimizer-<e>.pt per epoch (50cc869)",
    "an oversized teacher answer was stored whole in every verdict: teacher/vlm.py refuses it (254c466)",
    "three requirements had no upper version bound: pyproject.toml (b728f0d)",
    "two extract/teach processes on one workspace computed every video twice and concurrent manifest updates lost "
    "writes: data/claims.py (per-video claims, locks around update_manifest and append_line)",
    "a second train of a running run wrote into the same run directory: train/session.py holds the run (hold_run)",
]


@dataclass
class Ledger:
    faults_injected: int = 0
    faults_survived: int = 0
    kills_mid_work: int = 0
    bad_inputs_tried: int = 0
    bad_inputs_refused: int = 0
    outputs_lost: int = 0
    notes: list[str] = field(default_factory=list)
    _registered: bool = False

    def fault(self, survived: bool, mid_work: bool = True, lost: int = 0, note: str = "") -> None:
        self.faults_injected += 1
        self.faults_survived += bool(survived)
        self.kills_mid_work += bool(mid_work)
        self.outputs_lost += lost
        if note:
            self.notes.append(note)

    def bad_input(self, refused_cleanly: bool, note: str = "") -> None:
        self.bad_inputs_tried += 1
        self.bad_inputs_refused += bool(refused_cleanly)
        if note and not refused_cleanly:
            self.notes.append(note)

    def lines(self) -> list[str]:
        out = [f"faults injected: {self.faults_injected}, survived: {self.faults_survived} "
               f"({self.kills_mid_work} kills landed mid-work)",
               f"bad inputs tried: {self.bad_inputs_tried}, refused cleanly (or recovered as documented): "
               f"{self.bad_inputs_refused}",
               f"outputs lost: {self.outputs_lost}"]
        if DEFECTS_FIXED:
            out.append("defects found and fixed (docs/reliability.md):")
            out += [f"  - {d}" for d in DEFECTS_FIXED]
        out += [f"  ! {n}" for n in self.notes]
        return out

    # ---- pytest plugin ------------------------------------------------------------------------------
    def register(self, config) -> "Ledger":
        if not self._registered:
            config.pluginmanager.register(self, "hiddenemo-reliability-ledger")
            self._registered = True
        return self

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.faults_injected or self.bad_inputs_tried:
            terminalreporter.section("hiddenemo reliability")
            for line in self.lines():
                terminalreporter.write_line(line)


LEDGER = Ledger()
