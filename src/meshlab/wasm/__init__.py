"""Extending the proxy with WebAssembly: Istio's WasmPlugin and the proxy-wasm ABI (chapter 10).

    abi      the ABI's numbers (results, log levels, header map and buffer types) and header-map encoding
    host     a proxy-wasm host on wasmtime: a real module as an HTTP filter (WasmHttpFilter)
    build    modules compiled from AssemblyScript with the proxy-wasm SDK from npm, cached
    plugin   Istio's WasmPlugin: validation, which sidecars and traffic it selects, order, what istiod sends
    fetch    what pilot-agent does with it: fetch (file, http, oci), check the sha256, cache, or fall back
"""
