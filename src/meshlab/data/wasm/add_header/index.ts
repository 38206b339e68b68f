// add_header: adds one response header, its name and value from the plugin configuration
// (JSON: {"name": "x-meshlab", "value": "hello"}), as the SDK's own hello-world filter does.
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, log, LogLevelValues } from "@solo-io/proxy-runtime";
import { parseFlatConfig, readPluginConfiguration } from "../config";

class AddHeaderRoot extends RootContext {
  name: string = "";
  value: string = "";

  onConfigure(configuration_size: u32): bool {
    const config = parseFlatConfig(readPluginConfiguration(configuration_size));
    if (config.error == "" && !config.has("name")) config.error = "\"name\" is required";
    if (config.error != "") {
      log(LogLevelValues.error, "add_header: bad configuration: " + config.error);
      return false;
    }
    this.name = config.get("name");
    this.value = config.get("value");
    return true;
  }

  createContext(context_id: u32): Context {
    return new AddHeader(context_id, this);
  }
}

class AddHeader extends Context {
  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as AddHeaderRoot;
    stream_context.headers.response.add(root.name, root.value);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new AddHeaderRoot(context_id) as RootContext; }, "add_header");
