"""Sanctions in the stream: alerts and people's actions in, escalation decisions out.

Three agents (`agents.py`), each a thin shell around a pure processor of
`claimstream.sanctions.processor` (read it for the data flow and the records' shapes):

* `claimstream.sanctions-route`: alerts.v1 -> repartition.alert, keyed by alert_id;
* `claimstream.sanctions-index`: repartition.alert + actions.v1 (co-partitioned) against the
  table `alert-index`; fans alerts, verdicts and remediations out to every subject the alert
  concerns, unfreezes to their scope, on repartition.subject; counts verdicts per rule;
* `claimstream.sanctions-subject`: repartition.subject against the table `state-subject`
  (one `Escalation` state per `kind:id`); commands go to every sink (commands topic and freeze
  registry, as detection's do), warnings / grade changes / points changes to
  claimstream.sanctions.v1, keyed `kind:id`.

What they share, the event-time ticks and the read side the API asks (a `SanctionsView`) are
in `runtime.py`.
"""
