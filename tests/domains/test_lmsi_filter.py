"""LMSI's self-consistency filter: majority labels, ties, unreadable and self-contradicting
chains, and the threshold chosen on train questions."""

from __future__ import annotations

from domains.math_sc.selfconsistency import (
    NONE_KEPT,
    Vote,
    choose_threshold,
    keep_chains,
    threshold_table,
    vote,
)

A29 = "3 * 12 = 36. 36 - 7 = 29. The answer is 29."
A29b = "36 - 7 = 29. The answer is 29."
A30 = "36 - 6 = 30. The answer is 30."


def test_majority_and_share():
    v = vote([A29, A29b, A30, "no idea"])
    assert (v.label, v.votes, v.share) == ("29", 2, 0.5)  # the unreadable chain counts in the share
    assert v.answers == ["29", "29", "30", None]


def test_tie_and_all_different_have_no_label():
    assert vote([A29, A30]).label is None
    assert vote([A29, A30, "7 - 2 = 5. The answer is 5."]).label is None
    assert vote(["garbage", "The answer is 4 or 5."]).label is None
    assert vote([]).label is None
    assert keep_chains([A29, A30], vote([A29, A30]), 0.0) == []


def test_keep_agreeing_chains_above_threshold():
    chains = [A29, A29b, A30, A29]  # the repeat is kept once
    v = vote(chains)
    assert v.share == 0.75
    assert keep_chains(chains, v, 0.5) == [A29, A29b]
    assert keep_chains(chains, v, 0.8) == []
    assert keep_chains(chains, v, 0.5, max_per_question=1) == [A29]


def test_chain_contradicting_its_answer_is_dropped():
    # its worked result is 17 but it states 19; with two honest 19s it is still no rationale
    bad = "12 + 5 = 17. The answer is 19."
    wrong_step = "12 + 5 = 18. 18 + 1 = 19. The answer is 19."
    good = "12 + 7 = 19. The answer is 19."
    chains = [bad, wrong_step, good, good + " "]
    v = vote(chains)
    assert v.label == "19" and v.share == 1.0
    assert keep_chains(chains, v, 0.5) == [good]
    assert keep_chains(chains, v, 0.5, check_steps=False) == [bad, wrong_step, good]


def V(label, share):
    return Vote(label, int(share * 8), share, [])


def test_threshold_maximises_net_correct_labels():
    votes = [V("1", 1.0), V("2", 1.0), V("3", 0.75), V("9", 0.5), V("9", 0.5), V("4", 0.5), V(None, 0.25)]
    gold = ["1", "2", "3", "5", "6", "4", "7"]
    t = choose_threshold(votes, gold)
    assert t["threshold"] == 0.75  # 3 right, 0 wrong; at 0.5: 4 right, 2 wrong (net 2 < 3)
    rows = {r["threshold"]: r for r in t["table"]}
    assert rows[0.5]["kept"] == 6 and rows[0.5]["correct"] == 4 and rows[0.0]["net"] == 2
    assert rows[1.0]["precision"] == 1.0


def test_threshold_ties_take_the_higher_and_all_wrong_keeps_nothing():
    # net 1 at 1.0 (1 right) and at 0.5 (2 right, 1 wrong): the cleaner set wins
    t = choose_threshold([V("1", 1.0), V("2", 0.5), V("0", 0.5)], ["1", "2", "3"])
    assert t["threshold"] == 1.0
    t = choose_threshold([V("8", 1.0), V("9", 0.5)], ["1", "2"])
    assert t["threshold"] == NONE_KEPT and t["chosen"]["kept"] == 0
    assert threshold_table([V("3/4", 1.0)], ["0.75"])[0]["correct"] == 1  # gold read as a fraction too
