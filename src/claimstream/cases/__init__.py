"""Casework for fund supervisors: cases with working-day deadlines, reports, recovered money.

A pure core, like `claimstream.sanctions` below it (no Kafka, Redis, faust or wall clock; time
is event time passed in):

* `calendar`: working days on a holiday calendar file (weekends, holidays, 调休);
* `actions`: the case actions people publish on `claimstream.actions.v1` and their records;
* `case`: the case state machine (first_review -> re_review -> appeal -> investigation ->
  decision -> closed), its deadlines, money and decision, and the grouping of alerts;
* `processor`: the stream's batch steps (grouping alerts per subject, one state per case);
* `reports`: reports from the public and their deadlines;
* `ledger`: money flagged, confirmed, deducted and recovered, summed per month.

The faust wiring is `claimstream.stream.cases`; the procedure is described in docs/cases.md.
"""
