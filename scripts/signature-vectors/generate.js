#!/usr/bin/env node
// Naver Commerce client_secret_sign test vectors, Node side (bcryptjs, pinned in package.json).
//
//   node generate.js hash < triples   print client_id<TAB>timestamp<TAB>client_secret<TAB>bcrypt<TAB>sign
//   node generate.js version          print the installed bcryptjs version
//
// The triples come from `generate.py triples`; generate.sh compares this output with
// `generate.py hash` byte for byte.
"use strict";

const fs = require("fs");
const path = require("path");
const bcrypt = require("bcryptjs");

function sign(clientId, timestamp, clientSecret) {
  const hashed = bcrypt.hashSync(clientId + "_" + timestamp, clientSecret);
  return [hashed, Buffer.from(hashed, "utf8").toString("base64")];
}

const cmd = process.argv[2];
if (cmd === "hash") {
  const out = [];
  for (const line of fs.readFileSync(0, "utf8").split("\n")) {
    if (line === "") continue;
    const [clientId, timestamp, clientSecret] = line.split("\t");
    out.push([clientId, timestamp, clientSecret, ...sign(clientId, timestamp, clientSecret)].join("\t"));
  }
  process.stdout.write(out.map((l) => l + "\n").join(""));
} else if (cmd === "version") {
  // bcryptjs's "exports" hides package.json, so walk up from the resolved entry point.
  let dir = path.dirname(require.resolve("bcryptjs"));
  const isPkg = (d) =>
    fs.existsSync(path.join(d, "package.json")) &&
    JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8")).name === "bcryptjs";
  while (!isPkg(dir)) {
    if (path.dirname(dir) === dir) throw new Error("bcryptjs package.json not found");
    dir = path.dirname(dir);
  }
  console.log(JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version);
} else {
  console.error("usage: node generate.js hash|version");
  process.exit(2);
}
