/**
 * The page's controls, bound to its state: labelled text fields that keep their drafts and show their errors,
 * buttons that show when their transaction is under way, and form submission. Built with dom.ts's `h`.
 */
import { h } from "./dom";
import { draft, state } from "./state";

export interface FieldOptions {
  placeholder?: string;
  hint?: string;
  multiline?: boolean;
  inputmode?: string;
}

/** A labelled text input bound to a draft, with its hint and error message next to it. */
export function field(key: string, label: string, options: FieldOptions = {}): HTMLElement {
  const error = state.fieldErrors.get(key);
  const describedBy = [options.hint ? `${key}-hint` : "", error ? `${key}-error` : ""].filter(Boolean).join(" ");
  const attrs = {
    id: key,
    name: key,
    placeholder: options.placeholder,
    inputmode: options.inputmode,
    autocomplete: "off",
    spellcheck: "false",
    "aria-invalid": error ? "true" : undefined,
    "aria-describedby": describedBy || undefined,
    oninput: (event: Event) => {
      state.drafts.set(key, (event.target as HTMLInputElement).value);
    },
  };
  const control = options.multiline ? h("textarea", { ...attrs, rows: 5 }) : h("input", { ...attrs, type: "text" });
  (control as HTMLInputElement).value = draft(key);
  return h(
    "div",
    { class: "field" },
    h("label", { for: key }, label),
    options.hint ? h("p", { class: "hint", id: `${key}-hint` }, options.hint) : null,
    control,
    error ? h("p", { class: "field-error", id: `${key}-error`, role: "alert" }, error) : null,
  );
}

export interface ButtonOptions {
  /** The transaction key that disables the button while it runs. */
  busyKey?: string;
  /** The class: "secondary" unless given ("primary", "danger"). */
  kind?: string;
  id?: string;
  disabled?: boolean;
}

export function button(label: string, onclick: () => unknown, options: ButtonOptions = {}): HTMLElement {
  const busy = options.busyKey ? state.busy.has(options.busyKey) : false;
  return h(
    "button",
    {
      type: "button",
      class: options.kind ?? "secondary",
      id: options.id,
      disabled: busy || options.disabled,
      "aria-busy": busy ? "true" : undefined,
      onclick: () => void onclick(),
    },
    label,
  );
}

/** A form's primary submit button, disabled while the transaction under `busyKey` runs. */
export function submitButton(label: string, busyKey: string, id?: string): HTMLElement {
  const busy = state.busy.has(busyKey);
  return h(
    "button",
    { type: "submit", class: "primary", id, disabled: busy, "aria-busy": busy ? "true" : undefined },
    label,
  );
}

/** A form's submit handler: runs `action` instead of submitting the page. */
export function onSubmit(action: () => unknown): (event: Event) => void {
  return (event: Event) => {
    event.preventDefault();
    void action();
  };
}
