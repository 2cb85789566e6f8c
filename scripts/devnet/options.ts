/** The devnet's command line: npm start [-- --hosts 6 --epochs 3 --epoch-seconds 12 --keep-running]. */
import { parseArgs } from "node:util";

import { DevnetError } from "./common";

export interface Options {
  hosts: number;
  epochs: number;
  epochSeconds: number;
  keepRunning: boolean;
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      hosts: { type: "string", default: "6" },
      epochs: { type: "string", default: "3" },
      "epoch-seconds": { type: "string", default: "12" },
      "keep-running": { type: "boolean", default: false },
    },
    strict: true,
  });
  const int = (value: string, flag: string, min: number, max: number) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new DevnetError(`--${flag} must be an integer ${min}..${max}`);
    return n;
  };
  return {
    // At least 6: the fast host needs a peer on its gateway, the other gateway a host once host-1 has left, and
    // Edge Storage (storage.ts) a gateway with 3 hosts: 2 for an object's fragments, 1 to rebuild one on.
    hosts: int(values.hosts!, "hosts", 6, 20),
    epochs: int(values.epochs!, "epochs", 2, 50),
    epochSeconds: int(values["epoch-seconds"]!, "epoch-seconds", 6, 3600),
    keepRunning: values["keep-running"]!,
  };
}
