"""run.sh's last line: reproduced, inside the baseline's seed spread, or outside it."""

from agnews.evaluation.reproduction import verdict

SPREAD = {
    "runs": [{}] * 5,
    "threads": 2,
    "test_acc": {"mean": 0.882, "sd": 0.002, "min": 0.879, "max": 0.885},
}


def test_an_exact_rerun_says_reproduced():
    assert verdict(0.881974, 0.881974, SPREAD).endswith(": reproduced exactly")


def test_a_difference_inside_mean_plus_minus_two_sd_is_noise():
    line = verdict(0.8855, 0.881974, SPREAD)
    assert "differs by +0.0035, inside the baseline's spread over 5 seeds" in line
    assert "0.8780..0.8860" in line and "not explained" not in line


def test_a_difference_outside_it_says_so():
    line = verdict(0.8876, 0.881974, SPREAD)
    assert "OUTSIDE" in line and "not explained by the seed alone" in line


def test_without_a_recorded_spread_it_does_not_judge():
    assert "no seed spread recorded" in verdict(0.8876, 0.881974, None)
