"""The do-nothing faust agent's figure as `make bench` reads it (`devtools.baselines`)."""

from claimstream.devtools.baselines import figure_of


def test_the_figure_is_read_from_a_plain_line() -> None:
    assert figure_of("20000 2.5\n") == 8000.0


def test_the_figure_is_read_from_fausts_log_prefix() -> None:
    assert figure_of("[2026-12-05 03:34:33,255] [22481] [WARNING] 20000 2.580655 \n") == (
        20000 / 2.580655
    )


def test_no_figure_is_none() -> None:
    assert figure_of("[2026-12-05 03:34:33,255] [22481] [WARNING] starting 8 partitions\n") is None
