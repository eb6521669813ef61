// How the model's chat template writes a function call, taken from node-llama-cpp's chat
// wrapper (for Qwen: `<tool_call>\n{"name": "NAME", "arguments": ARGS}\n</tool_call>`). The
// provider watches free text for the call's opening, then writes the fixed parts itself and
// lets grammars choose the name and the arguments.

import { LlamaText, SpecialTokensText, type ChatWrapper, type LlamaTextValue } from 'node-llama-cpp';

export interface ToolCallSyntax {
  /** Texts that, in free generation, mean "a function call starts here". */
  readonly triggers: string[];
  /** The whole call prefix, up to the function name. */
  readonly prefix: LlamaText;
  /** The part of the prefix after a trigger the model already wrote. */
  readonly afterTrigger: LlamaText;
  /** The first character after the name (ends the name grammar), e.g. `"`. */
  readonly nameTerminator: string;
  /** Between the name and the arguments, without the terminator. */
  paramsPrefixAfterTerminator(name: string): LlamaText;
  paramsPrefix(name: string): LlamaText;
  /** After the arguments, plus the separator a following parallel call would need. */
  suffixAndSeparator(name: string): LlamaText;
}

export function toolCallSyntax(wrapper: ChatWrapper): ToolCallSyntax {
  const call = wrapper.settings.functions.call;
  const prefix = LlamaText(call.prefix);
  const [first, ...rest] = prefix.values.filter((v) => valueText(v) !== '');
  const trigger = first === undefined ? '' : valueText(first).trimStart();
  const alternates = (call.prefixAlternateMatches ?? []).map((m) => LlamaText(m).toString().trim()).filter(Boolean);
  const paramsPrefixOf = (name: string) => withFunctionName(LlamaText(call.paramsPrefix), name);
  const terminator = LlamaText(call.paramsPrefix).toString().slice(0, 1);
  return {
    triggers: [trigger, ...alternates].filter(Boolean),
    prefix,
    afterTrigger: LlamaText(rest),
    nameTerminator: terminator,
    paramsPrefix: paramsPrefixOf,
    paramsPrefixAfterTerminator: (name) => dropFirstChar(paramsPrefixOf(name)),
    suffixAndSeparator: (name) =>
      LlamaText([withFunctionName(LlamaText(call.suffix), name), LlamaText(wrapper.settings.functions.parallelism?.call.betweenCalls ?? '')]),
  };
}

function valueText(value: LlamaTextValue): string {
  return typeof value === 'string' ? value : value instanceof SpecialTokensText ? value.value : '';
}

function withFunctionName(text: LlamaText, name: string): LlamaText {
  return text.mapValues((v) => {
    if (typeof v === 'string') return v.replaceAll('{{functionName}}', name);
    if (v instanceof SpecialTokensText) return new SpecialTokensText(v.value.replaceAll('{{functionName}}', name));
    return v;
  });
}

function dropFirstChar(text: LlamaText): LlamaText {
  let dropped = false;
  return text.mapValues((v) => {
    if (dropped) return v;
    const t = valueText(v);
    if (!t) return v;
    dropped = true;
    return typeof v === 'string' ? t.slice(1) : new SpecialTokensText(t.slice(1));
  });
}
