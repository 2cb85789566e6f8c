/**
 * The page's state: the one object every view renders from and every action changes. `render()` redraws the
 * page from it; main.ts installs the renderer (`setRenderer`), so views and actions call it without importing
 * the page, and the imports stay a tree.
 */
import type { Address, EIP1193Provider, Hex } from "viem";

import type { RegionMap } from "../regionsView";
import type { EdgeChain } from "./chain";
import type { ConsoleConfig } from "./pageConfig";
import type { Overview } from "./readOverview";

export type TxState = "signing" | "pending" | "confirmed" | "failed";

export interface TxRecord {
  /** Increases with every transaction started, so a reader can tell a new outcome from the previous one. */
  seq: number;
  state: TxState;
  text: string;
  hash?: Hex;
  errorName?: string;
}

/** The map of regions (regions.ts), read from the Console server: no wallet needed. */
export interface RegionsState {
  map?: RegionMap;
  /** Why the map could not be read (the server's message). */
  error?: string;
  /** The server has no map (started without --stargate-url). */
  off?: boolean;
  loading: boolean;
}

export interface State {
  config?: ConsoleConfig;
  provider?: EIP1193Provider;
  account?: Address;
  walletChainId?: number;
  chain?: EdgeChain;
  overview?: Overview;
  loading: boolean;
  notice?: { kind: "error" | "info"; text: string };
  /** The last transaction of each control (its key), shown in its status line. */
  tx: Map<string, TxRecord>;
  fieldErrors: Map<string, string>;
  /** What the user typed, by field id: kept across re-renders. */
  drafts: Map<string, string>;
  /** Stakes (ids) whose express-release confirmation is open. */
  expressOpen: Set<string>;
  /** Controls (keys) with a transaction under way. */
  busy: Set<string>;
  regions: RegionsState;
}

export const state: State = {
  loading: false,
  tx: new Map(),
  fieldErrors: new Map(),
  drafts: new Map(),
  expressOpen: new Set(),
  busy: new Set(),
  regions: { loading: false },
};

let renderer: () => void = () => {};

/** Installs the function that redraws the page (main.ts, once). */
export function setRenderer(draw: () => void): void {
  renderer = draw;
}

/** Redraws the page from `state`. */
export function render(): void {
  renderer();
}

/** What the user typed in field `key` ("" when nothing). */
export function draft(key: string): string {
  return state.drafts.get(key) ?? "";
}
