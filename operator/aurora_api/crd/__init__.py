"""From pydantic models to Kubernetes CustomResourceDefinitions.

pydantic emits JSON Schema (``$ref``, ``anyOf`` with null, ``const``, titles); the API server wants a
*structural* OpenAPI v3 schema. ``schema`` converts, ``structural`` checks the result independently, and
``definitions`` assembles the CRDs (printer columns, subresources, short names).
No I/O here: ``aurora_api.gen``
writes the files.
"""
