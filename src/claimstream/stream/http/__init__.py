"""The worker's HTTP surface on faust's web server: freeze look-ups, the query and action
API, status and metrics, and the OpenAPI document (`openapi.json`)."""
