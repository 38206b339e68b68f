// meshlab's helpers for the example proxy-wasm filters (AssemblyScript, built with
// @solo-io/proxy-runtime 0.1.8 and assemblyscript 0.14.9, which has no JSON library).
//
//   readPluginConfiguration  the plugin's configuration bytes as a string, read correctly
//   FlatConfig               a JSON object of string values ({"name": "x-a", "value": "b"})
//   parseFlatConfig          parse one, or say what is wrong with it (FlatConfig.error)

import { get_buffer_bytes, BufferTypeValues } from "@solo-io/proxy-runtime/runtime";

// The SDK's own RootContext.onConfigure passes the configuration's length where the ABI wants a
// pointer for the size, so the host writes into the module's low memory; reading the buffer
// through get_buffer_bytes (which passes both pointers) avoids that.
export function readPluginConfiguration(configuration_size: u32): string {
  return String.UTF8.decode(get_buffer_bytes(BufferTypeValues.PluginConfiguration, 0, configuration_size));
}

export class FlatConfig {
  keys: Array<string> = [];
  values: Array<string> = [];
  error: string = "";

  get(key: string): string {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) return this.values[i];
    }
    return "";
  }

  has(key: string): bool {
    return this.keys.includes(key);
  }
}

class Cursor {
  text: string;
  at: i32 = 0;
  constructor(text: string) { this.text = text; }
  skipSpace(): void {
    while (this.at < this.text.length) {
      const c = this.text.charAt(this.at);
      if (c != " " && c != "\n" && c != "\r" && c != "\t") break;
      this.at++;
    }
  }
  peek(): string { return this.at < this.text.length ? this.text.charAt(this.at) : ""; }
}

// A JSON string at the cursor (the cursor on its opening quote), escapes \" \\ \/ \n \t kept simple.
function readString(cur: Cursor, config: FlatConfig): string {
  if (cur.peek() != "\"") {
    config.error = "expected a string at offset " + cur.at.toString();
    return "";
  }
  cur.at++;
  let out = "";
  while (cur.at < cur.text.length) {
    const c = cur.text.charAt(cur.at);
    cur.at++;
    if (c == "\"") return out;
    if (c == "\\") {
      const e = cur.peek();
      cur.at++;
      out += e == "n" ? "\n" : e == "t" ? "\t" : e;
    } else {
      out += c;
    }
  }
  config.error = "unterminated string";
  return "";
}

export function parseFlatConfig(text: string): FlatConfig {
  const config = new FlatConfig();
  const cur = new Cursor(text);
  cur.skipSpace();
  if (cur.peek() != "{") {
    config.error = "the configuration must be a JSON object of strings, got: " + text;
    return config;
  }
  cur.at++;
  cur.skipSpace();
  if (cur.peek() == "}") return config;
  while (true) {
    cur.skipSpace();
    const key = readString(cur, config);
    if (config.error != "") return config;
    cur.skipSpace();
    if (cur.peek() != ":") {
      config.error = "expected ':' after \"" + key + "\"";
      return config;
    }
    cur.at++;
    cur.skipSpace();
    const value = readString(cur, config);
    if (config.error != "") {
      config.error = "the value of \"" + key + "\" must be a string";
      return config;
    }
    config.keys.push(key);
    config.values.push(value);
    cur.skipSpace();
    const next = cur.peek();
    cur.at++;
    if (next == "}") break;
    if (next != ",") {
      config.error = "expected ',' or '}' at offset " + (cur.at - 1).toString();
      return config;
    }
  }
  cur.skipSpace();
  if (cur.at < text.length) config.error = "text after the closing '}'";
  return config;
}
