// `node --import ./test/helpers/record-loads.mjs …`: registers record-loads-hooks.mjs, which appends
// the URL of every ES module the process loads to the file named by RECORD_LOADS.
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url, { data: { log: process.env.RECORD_LOADS } });
