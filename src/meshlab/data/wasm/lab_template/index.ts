// Chapter 10's lab: your own proxy-wasm filter. As given it lets every request pass; fill the hole
// in onRequestHeaders (and onResponseHeaders if you like), then build it with
// meshlab.wasm.build.build_source(text, name="my_filter") and load it as a WasmPlugin.
//
// What a filter may do here (@solo-io/proxy-runtime 0.1.8):
//   stream_context.headers.request.get(name)            read a request header ("" when absent)
//   stream_context.headers.request.replace(name, value) set a request header
//   stream_context.headers.response.add(name, value)    add a response header (in onResponseHeaders)
//   send_local_response(status, details, body, [], GrpcStatusValues.InvalidCode)  answer yourself
//     (then return FilterHeadersStatusValues.StopIteration)
//   log(LogLevelValues.info, message)                   write to the proxy's log
//   (this.root_context as MyFilterRoot).config.get(key) a value from the plugin configuration (JSON)
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, log, LogLevelValues, send_local_response, GrpcStatusValues } from "@solo-io/proxy-runtime";
import { FlatConfig, parseFlatConfig, readPluginConfiguration } from "../config";

class MyFilterRoot extends RootContext {
  config: FlatConfig = new FlatConfig();

  onConfigure(configuration_size: u32): bool {
    this.config = parseFlatConfig(readPluginConfiguration(configuration_size));
    if (this.config.error != "") {
      log(LogLevelValues.error, "my_filter: bad configuration: " + this.config.error);
      return false;
    }
    return true;
  }

  createContext(context_id: u32): Context {
    return new MyFilter(context_id, this);
  }
}

class MyFilter extends Context {
  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as MyFilterRoot;
    // ---- your code here: decide from stream_context.headers.request and root.config ----

    // ---- end of your code ----
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new MyFilterRoot(context_id) as RootContext; }, "my_filter");
