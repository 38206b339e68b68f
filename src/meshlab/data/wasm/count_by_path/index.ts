// count_by_path: a counter per request path. proxy-wasm metrics have a name and no labels, so the
// path goes into the name: meshlab_requests_total_path_<path with every other character as "_">
// (the query string dropped), e.g. "/api/v1?x=1" counts in meshlab_requests_total_path__api_v1.
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, Counter } from "@solo-io/proxy-runtime";

function metricName(path: string): string {
  const query = path.indexOf("?");
  const bare = query < 0 ? path : path.substring(0, query);
  let name = "meshlab_requests_total_path_";
  for (let i = 0; i < bare.length; i++) {
    const c = bare.charCodeAt(i);
    const keep = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    name += keep ? bare.charAt(i) : "_";
  }
  return name;
}

class CountByPathRoot extends RootContext {
  counters: Map<string, Counter> = new Map();

  counter(name: string): Counter {
    if (!this.counters.has(name)) this.counters.set(name, new Counter(name));
    return this.counters.get(name);
  }

  createContext(context_id: u32): Context {
    return new CountByPath(context_id, this);
  }
}

class CountByPath extends Context {
  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as CountByPathRoot;
    root.counter(metricName(stream_context.headers.request.get(":path"))).increment(1);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new CountByPathRoot(context_id) as RootContext; }, "count_by_path");
