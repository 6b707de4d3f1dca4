const fs = require("fs");
const { exec } = require("child_process");

function readUserFile(name) {
  return fs.readFileSync("/srv/uploads/" + name);
}

function thumbnail(path) {
  exec("convert " + path + " thumb.png");
}

function matches(input, pattern) {
  return new RegExp(pattern).test(input);
}

function lookup(obj, key) {
  return obj[key];
}

module.exports = { readUserFile, thumbnail, matches, lookup };
