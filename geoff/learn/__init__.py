"""Active learning: from start structures and a potential (or nothing) to a committee trained on DFT
labels chosen where it was unsure (``geoff learn``).

    from geoff.learn import LearnSettings, learn
    result = learn(LearnSettings(structures=["start.xyz"], dft="PBE/def2-SVP", run_dir="runs/learn",
                                 potential="ethanol-egnn", temperatures=[400.0], budget_labels=200))

Modules: settings (options and their checks), state (the resumable state file), explore (MD with
the committee), select (which frames to label), members (training the committee), accuracy
(errors against labels), report, loop (the driver).
"""

from .loop import LearnResult, learn
from .settings import LearnSettings, check_settings

__all__ = ["LearnResult", "LearnSettings", "check_settings", "learn"]
