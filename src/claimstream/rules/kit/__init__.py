"""The rule kit: what the catalogue's stateful rules share.

- `rows`: rows (plain tuples, `TS` and `EVENT_ID` first, the rest named by a rule's index
  constants) kept sorted by (ts, event_id); insert that refuses a held id, replace, the bisects
  and the keep-from/keep-after cuts expiry is made of.
- `episodes`: "at least N within D", one alert per episode, over a trailing window
  (`Episodes`: add a row, expire, size).
- `stays`: a discharge and the later admissions it may pair with (`StayPairs`).
- `money`: amounts in yuan to the fen: a dispensing's cost, a claim's lines (index, code,
  amount) and their total.

A rule built on the kit keeps to its regulation: what an event is, which rows it holds, what a
finding says. `docs/rules.md` walks through writing one.
"""
