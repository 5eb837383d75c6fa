"""What builds, drives and checks the project but is never imported by the service: the OpenAPI
generator, the launcher of the real server, and the reference Value class as written with the students'
classes made from it, which the tests and the benchmark share."""
