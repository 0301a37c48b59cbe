/** A tiny element builder: the panel is plain DOM, rendered from the model's state. */

export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.append(child);
  }
  return el;
}

export function button(
  label: string,
  onClick: () => void,
  attrs: Record<string, string | boolean | undefined> = {}
): HTMLButtonElement {
  const el = h(
    'button',
    { type: 'button', class: 'jp-Button jp-deploy-button', ...attrs },
    label
  );
  el.addEventListener('click', onClick);
  return el;
}

export function numberInput(
  value: number | null,
  min: number,
  label: string
): HTMLInputElement {
  return h('input', {
    type: 'number',
    min: String(min),
    step: '1',
    value: value === null ? '' : String(value),
    'aria-label': label,
    title: label,
    class: 'jp-mod-styled jp-deploy-number'
  });
}
