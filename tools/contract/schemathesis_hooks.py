"""schemathesis hooks for valuegraph, loaded through schemathesis.toml.

openapi.yaml declares GET /openapi.yaml's body as what it is on the wire, a string of YAML text, the
way Prism and openapi-python-client read a schema for a non-JSON media type. schemathesis alone parses
an application/yaml body before validating it; this deserializer, put in place of its YAML ones has it check the text, as declared.
"""

import schemathesis
from schemathesis.core.media_types import YAML_MEDIA_TYPES


@schemathesis.deserializer(*YAML_MEDIA_TYPES)
def yaml_as_text(ctx: schemathesis.DeserializationContext, response: schemathesis.Response) -> str:
    return response.content.decode(response.encoding or "utf-8")
