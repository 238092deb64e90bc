// Module customization hooks (https://nodejs.org/api/module.html#customization-hooks): every URL
// the loader loads, one a line, appended synchronously so nothing is lost when the process exits.
import { appendFileSync } from 'node:fs';

let log;

export function initialize(data) {
  log = data.log;
}

export async function load(url, context, nextLoad) {
  if (log) appendFileSync(log, `${url}\n`);
  return nextLoad(url, context);
}
