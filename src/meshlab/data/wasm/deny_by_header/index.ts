// deny_by_header: answers 403 itself when a request header named in the configuration has the
// configured value (JSON: {"header": "x-deny", "value": "yes"}); other requests pass.
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, log, LogLevelValues, send_local_response, GrpcStatusValues } from "@solo-io/proxy-runtime";
import { parseFlatConfig, readPluginConfiguration } from "../config";

class DenyByHeaderRoot extends RootContext {
  header: string = "";
  value: string = "";

  onConfigure(configuration_size: u32): bool {
    const config = parseFlatConfig(readPluginConfiguration(configuration_size));
    if (config.error == "" && !(config.has("header") && config.has("value"))) config.error = "\"header\" and \"value\" are required";
    if (config.error != "") {
      log(LogLevelValues.error, "deny_by_header: bad configuration: " + config.error);
      return false;
    }
    this.header = config.get("header");
    this.value = config.get("value");
    return true;
  }

  createContext(context_id: u32): Context {
    return new DenyByHeader(context_id, this);
  }
}

class DenyByHeader extends Context {
  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as DenyByHeaderRoot;
    if (stream_context.headers.request.get(root.header) != root.value) {
      return FilterHeadersStatusValues.Continue;
    }
    log(LogLevelValues.info, "deny_by_header: denied, " + root.header + ": " + root.value);
    const body = String.UTF8.encode("denied by deny_by_header: " + root.header + ": " + root.value + "\n");
    send_local_response(403, "meshlab_denied_by_header", body, [], GrpcStatusValues.InvalidCode);
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => { return new DenyByHeaderRoot(context_id) as RootContext; }, "deny_by_header");
