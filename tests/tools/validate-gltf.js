// Runs the Khronos glTF validator (npm gltf-validator) on the GLB files given as arguments.
// Prints one line per file: "<name> errors=N warnings=N infos=N hints=N | <messages>",
// then "validator <version> files-with-errors N". Exit code 0 even with errors: the caller judges.
// Usage: NODE_PATH=<dir with node_modules> node validate-gltf.js a.glb b.glb
const validator = require('gltf-validator');
const fs = require('fs');
const path = require('path');

(async () => {
  let bad = 0;
  for (const file of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), { maxIssues: 100 });
    const issues = report.issues;
    const messages = issues.messages.map(m => `${m.code}@${m.pointer}: ${m.message}`).join(' | ');
    console.log(`${path.basename(file)} errors=${issues.numErrors} warnings=${issues.numWarnings} infos=${issues.numInfos} hints=${issues.numHints} | ${messages}`);
    if (issues.numErrors > 0) bad++;
  }
  console.log(`validator ${validator.version()} files-with-errors ${bad}`);
})().catch(error => { console.error(error); process.exit(2); });
