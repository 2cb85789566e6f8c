/** Metric helpers the services share (one Registry each, names `edge_<service>_<thing>_<unit>`). */
import { Gauge, type Registry } from "prom-client";

/** A gauge that reads current state when scraped (prom-client's `collect`), so it is never stale. */
export function stateGauge(registry: Registry, name: string, help: string, read: () => number): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}
