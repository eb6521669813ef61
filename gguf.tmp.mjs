import { readGgufFileInfo } from 'node-llama-cpp';
const t = setTimeout(() => { console.log('still waiting after 5 s'); process.exit(3); }, 5000);
try { const info = await readGgufFileInfo(process.argv[2]); console.log('ok', Object.keys(info)); } catch (e) { console.log('error:', e.message); }
clearTimeout(t);
