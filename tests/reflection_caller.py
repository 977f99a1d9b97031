"""A gRPC caller that has no protos: it learns promptgauge's services from server
reflection (grpc-requests) and makes the calls it is given.

    python tests/reflection_caller.py TARGET < calls.json

It runs as its own process so that none of promptgauge's generated code is
loaded, and resolves every type into a fresh descriptor pool. stdin is
{"calls": [{"service", "method", "metadata": [[key, value]], and "request": {...}
or, for a client stream, "requests": [{...}]}]}; stdout is {"services": [...],
"promptgauge_modules": [...], "results": [{"response": {...}} or {"code": NAME,
"details": "..."}]}, messages as JSON with proto field names.
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool
from grpc_requests import ReflectionClient


def main() -> None:
    target = sys.argv[1]
    calls = json.load(sys.stdin)["calls"]
    client = ReflectionClient(target, descriptor_pool=descriptor_pool.DescriptorPool())
    results = []
    for call in calls:
        request = iter(call["requests"]) if "requests" in call else call["request"]
        try:
            response = client.request(
                call["service"], call["method"], request,
                metadata=[tuple(pair) for pair in call.get("metadata", [])], timeout=10,
            )
            results.append({"response": response})
        except grpc.RpcError as error:
            results.append({"code": error.code().name, "details": error.details()})
    json.dump({
        "services": list(client.service_names),
        "promptgauge_modules": sorted(m for m in sys.modules if m.startswith("promptgauge.")),
        "results": results,
    }, sys.stdout)


if __name__ == "__main__":
    main()
