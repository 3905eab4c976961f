import { describeFailure, type Answer } from '../api.js';
import { h, replace } from '../dom.js';

/** What an API call from the page answered, and the same call as a curl line to copy. */
export class CallResult {
  readonly element = h('div', { class: 'result', 'aria-live': 'polite' });

  show(answer: Answer, success: string): void {
    const copy = h('button', { type: 'button', class: 'small secondary' }, 'Copy');
    const code = h('code', { class: 'curl' }, answer.curl);
    copy.addEventListener('click', () => {
      void copyText(answer.curl, code).then((copied) => {
        copy.textContent = copied ? 'Copied' : 'Select and copy';
      });
    });
    replace(
      this.element,
      h(
        'p',
        { class: answer.ok ? 'status ok' : 'status error', role: answer.ok ? 'status' : 'alert' },
        answer.ok ? `${answer.status} ${success}` : describeFailure(answer.status, answer.body),
      ),
      answer.ok && answer.body !== null ? h('pre', { class: 'response' }, JSON.stringify(answer.body, null, 2)) : null,
      h('div', { class: 'curl-line' }, code, copy),
    );
  }

  error(message: string): void {
    replace(this.element, h('p', { class: 'status error', role: 'alert' }, message));
  }

  clear(): void {
    replace(this.element);
  }
}

/** The clipboard needs a secure context (https or localhost); elsewhere the text is selected instead. */
async function copyText(text: string, element: HTMLElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = getSelection();
    selection?.removeAllRanges();
    selection?.addRange(range);
    return false;
  }
}
