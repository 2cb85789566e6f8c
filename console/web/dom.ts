/** A tiny element builder: h("button", { type: "button", onclick }, "Claim"). No framework, no innerHTML. */
type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

export function h(tag: string, attrs: Attrs = {}, ...children: Array<Child | Child[]>): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/** A definition list row: <div><dt>term</dt><dd>value</dd></div>. */
export function row(term: string, ...value: Child[]): HTMLElement {
  return h("div", { class: "row" }, h("dt", {}, term), h("dd", {}, ...value));
}

/** An element of index.html's fixed frame (#app, #connect, #wallet-status), which is always there. */
export const byId = (id: string): HTMLElement => document.getElementById(id)!;
