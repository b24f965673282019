"""The worker's HTTP surface on faust's web server (an aiohttp application), as plain aiohttp
routes: the query and action API (`api` logic, `routes` handlers and key routing), freeze
look-ups, status and metrics (`views`), `/health` and `/ready` (`health`), JSON for every error
(`errors`), and the OpenAPI document (`openapi.json`)."""
