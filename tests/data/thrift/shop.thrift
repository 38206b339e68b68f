// A small IDL for the MetaProtocol interop tests: the thrift compiler generates the Python client and
// processor, which talk to each other through meshlab's proxy.
namespace py shop

exception OutOfStock {
  1: string sku
}

struct Order {
  1: string sku,
  2: i32 quantity,
  3: list<string> notes,
  4: map<string, double> prices
}

service Orders {
  string place(1: Order order) throws (1: OutOfStock out),
  oneway void ping(1: i64 at)
}
