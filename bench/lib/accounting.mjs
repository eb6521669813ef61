// "Accounts for every token": the request log's totals against the metrics', for the chaos checks.

/** Sums a counter's series in Prometheus text, those whose labels include `labels`. */
export function metricSum(text, name, labels = '') {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/**
 * Every gateway's request-log rows. The store is shared, so one answers for all, but each process
 * batches its rows and a read flushes only the reading process's batch (docs/scale-out.md): every
 * gateway is read in turn, and the last read has them all.
 */
export async function requestLog(urls, adminKey) {
  let rows;
  for (const url of [urls].flat()) rows = (await fetch(`${url}/admin/requests?limit=10000`, { headers: { authorization: `Bearer ${adminKey}` } }).then((r) => r.json())).data;
  return rows;
}

/** Where the request log's rows, tokens and cost differ from what the gateways' metrics counted. */
export async function logAgainstMetrics(rows, urls) {
  const texts = await Promise.all(urls.map((url) => fetch(`${url}/metrics`).then((r) => r.text())));
  const counted = (name, labels) => texts.reduce((sum, text) => sum + metricSum(text, name, labels), 0);
  const sum = (field) => rows.reduce((total, row) => total + row[field], 0);
  const found = [];
  const compare = (what, logged, metric) => Math.abs(logged - metric) > 1e-9 && found.push(`${what}: request log ${logged}, metrics ${metric}`);
  compare('input tokens', sum('input_tokens'), counted('switchboard_tokens_total', 'direction="input"'));
  compare('output tokens', sum('output_tokens'), counted('switchboard_tokens_total', 'direction="output"'));
  compare('cost', sum('cost'), counted('switchboard_cost_usd_total'));
  compare('requests', rows.length, counted('switchboard_chat_requests_total'));
  return found;
}
