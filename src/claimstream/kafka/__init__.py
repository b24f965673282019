"""Everything claimstream says to Kafka outside the faust worker.

`topology` (topics.toml, the one source of topic names and partition counts), `admin`
(create topics, report drift), `reader` (read a topic back), `url` (broker addresses),
`control` (rule snapshots on the control topic), `actions` (people's actions), `sink`
(detection outputs onto their topics).
"""
