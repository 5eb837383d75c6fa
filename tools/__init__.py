"""What builds and drives the project but is never imported by the service: the OpenAPI generator
and the launcher of the real server that the tests and the benchmark share."""
