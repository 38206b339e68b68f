"""The SPIFFE Workload API's messages and service, defined here from the spec's schema.

The schema is the spec's ``workloadapi.proto`` (no proto package, so the service is
``/SpiffeWorkloadAPI/<Method>``): five methods, three of them server streams. meshlab builds the
message classes from a descriptor written out below instead of importing a client library's
generated code, so the agent and the real ``spiffe`` client it is tested with share nothing but
the wire format. They live in a private descriptor pool: the schema's names are global (no
package), and a process may also load the client's own copy.

Field numbers and types are the spec's; bytes fields carry DER (certificates concatenated, leaf
first; keys as PKCS#8) and JWT bundles carry JWKS JSON, keyed by trust domain ID.

    SERVICE, METHODS     the service name and its methods (name -> (request, response, streaming))
    messages             message classes by name: messages["X509SVIDResponse"](svids=[...])
    HEADER               the metadata every call must carry: ("workload.spiffe.io", "true")
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

SERVICE = "SpiffeWorkloadAPI"
HEADER = ("workload.spiffe.io", "true")

_F = descriptor_pb2.FieldDescriptorProto
STRING, BYTES, MESSAGE = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_MESSAGE
ONE, MANY = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

#: message -> fields (name, number, type, label, message type); "map" entries are string -> bytes.
_SCHEMA: dict[str, list[tuple]] = {
    "X509SVIDRequest": [],
    "X509SVIDResponse": [("svids", 1, MESSAGE, MANY, ".X509SVID"), ("crl", 2, BYTES, MANY, None), ("federated_bundles", 3, "map", MANY, None)],
    "X509SVID": [("spiffe_id", 1, STRING, ONE, None), ("x509_svid", 2, BYTES, ONE, None), ("x509_svid_key", 3, BYTES, ONE, None),
                 ("bundle", 4, BYTES, ONE, None), ("hint", 5, STRING, ONE, None)],
    "X509BundlesRequest": [],
    "X509BundlesResponse": [("crl", 1, BYTES, MANY, None), ("bundles", 2, "map", MANY, None)],
    "JWTSVIDRequest": [("audience", 1, STRING, MANY, None), ("spiffe_id", 2, STRING, ONE, None)],
    "JWTSVIDResponse": [("svids", 1, MESSAGE, MANY, ".JWTSVID")],
    "JWTSVID": [("spiffe_id", 1, STRING, ONE, None), ("svid", 2, STRING, ONE, None), ("hint", 3, STRING, ONE, None)],
    "JWTBundlesRequest": [],
    "JWTBundlesResponse": [("bundles", 1, "map", MANY, None)],
    "ValidateJWTSVIDRequest": [("audience", 1, STRING, ONE, None), ("svid", 2, STRING, ONE, None)],
    "ValidateJWTSVIDResponse": [("spiffe_id", 1, STRING, ONE, None), ("claims", 2, MESSAGE, ONE, ".google.protobuf.Struct")],
}

#: method -> (request, response, server streaming)
METHODS = {
    "FetchX509SVID": ("X509SVIDRequest", "X509SVIDResponse", True),
    "FetchX509Bundles": ("X509BundlesRequest", "X509BundlesResponse", True),
    "FetchJWTSVID": ("JWTSVIDRequest", "JWTSVIDResponse", False),
    "FetchJWTBundles": ("JWTBundlesRequest", "JWTBundlesResponse", True),
    "ValidateJWTSVID": ("ValidateJWTSVIDRequest", "ValidateJWTSVIDResponse", False),
}


def _map_entry(owner: descriptor_pb2.DescriptorProto, field: str) -> str:
    """A proto3 ``map<string, bytes>`` is a nested ``<Field>Entry`` message with map_entry set."""
    entry = owner.nested_type.add(name="".join(part.title() for part in field.split("_")) + "Entry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=STRING, label=ONE)
    entry.field.add(name="value", number=2, type=BYTES, label=ONE)
    return f".{owner.name}.{entry.name}"


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="meshlab/workload.proto", syntax="proto3", dependency=["google/protobuf/struct.proto"])
    for name, fields in _SCHEMA.items():
        message = file.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            if kind == "map":
                message.field.add(name=field, number=number, type=MESSAGE, label=MANY, type_name=_map_entry(message, field))
            else:
                message.field.add(name=field, number=number, type=kind, label=label, **({"type_name": type_name} if type_name else {}))
    service = file.service.add(name=SERVICE)
    for method, (request, response, streaming) in METHODS.items():
        service.method.add(name=method, input_type=f".{request}", output_type=f".{response}", server_streaming=streaming)
    return file


def _messages() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    struct = descriptor_pb2.FileDescriptorProto()
    struct_pb2.DESCRIPTOR.CopyToProto(struct)
    pool.Add(struct)
    pool.Add(_file())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in _SCHEMA}


messages = _messages()
