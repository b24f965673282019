"""The supervisors' web console, served by the worker's web server under `/console/`.

Server-rendered HTML (Jinja2, autoescaping on; no script at all, so every action works without
JavaScript), behind the roles of `claimstream.stream.http.access`:

* `session`: the sign-in cookie (the person's bearer token, HttpOnly, SameSite=Strict, Secure
  over TLS, Path=/console) and the CSRF token every form carries (an HMAC of the session's
  token: stateless, so any worker checks it, and unknowable to another site);
* `pages`: the routes: sign-in and sign-out, the queue of cases, a case (evidence, timeline,
  the next step's forms), an institution, the reports from the public (the queue by
  due time, a report and its forms), the stylesheet.

A page needs the `supervisor` role; an action form needs `reviewer` and is offered only to
it. An action is built by the same builders as the API and the CLI
(`claimstream.kafka.case_actions`), tried on the held case as the API tries it (a refusal
publishes nothing), and published signed with the worker's key by `Api.publish`, in the
signed-in person's name. docs/console.md describes the pages.
"""
