#!/usr/bin/env node
// Keeps this package's copy of the contract, and the types generated from it, in step with the
// repository's WIT (wit/v0.2.0/destination.wit), the one place the contract is written.
//
//   npm run sync-wit    copy the WIT into wit/ and regenerate types/ (jco guest-types)
//   npm run check-wit   change nothing; exit 1 naming every file that differs
//
// test/wit.test.js runs the check, so `npm test` fails when the copy or the types drift.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The contract version this kit is for. */
export const CONTRACT_VERSION = '0.2.0';

/** This package's directory. */
export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The repository's WIT, the source of truth. */
export const SOURCE_WIT = join(PACKAGE_DIR, '..', '..', 'wit', `v${CONTRACT_VERSION}`, 'destination.wit');

/** @param {string} dir @returns {string[]} every file under `dir`, relative to it, sorted */
function listFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

/**
 * What wit/ and types/ must hold, generated afresh from the repository's WIT: a map from path
 * (relative to the package) to content.
 *
 * @returns {Map<string, Buffer>}
 */
export function expectedFiles() {
  const wit = readFileSync(SOURCE_WIT);
  const work = mkdtempSync(join(tmpdir(), 'destination-kit-'));
  try {
    mkdirSync(join(work, 'wit'));
    writeFileSync(join(work, 'wit', 'destination.wit'), wit);
    const jco = fileURLToPath(import.meta.resolve('@bytecodealliance/jco').replace(/api\.js$/, 'jco.js'));
    execFileSync(process.execPath, [jco, 'guest-types', join(work, 'wit'), '--world-name', 'destination', '--out-dir', join(work, 'types'), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const files = new Map([['wit/destination.wit', wit]]);
    for (const file of listFiles(join(work, 'types'))) {
      files.set(join('types', file), readFileSync(join(work, 'types', file)));
    }
    return files;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Every file of wit/ and types/ that differs from `expected`: missing, different, or extra.
 *
 * @param {Map<string, Buffer>} expected
 * @returns {string[]} lines like "types/destination.d.ts differs"
 */
export function differences(expected) {
  const found = [...listFiles(join(PACKAGE_DIR, 'wit')).map((f) => join('wit', f)), ...listFiles(join(PACKAGE_DIR, 'types')).map((f) => join('types', f))];
  const problems = [];
  for (const [path, content] of expected) {
    const full = join(PACKAGE_DIR, path);
    if (!existsSync(full)) problems.push(`${path} is missing`);
    else if (!readFileSync(full).equals(content)) problems.push(`${path} differs`);
  }
  for (const path of found) {
    if (!expected.has(path)) problems.push(`${path} is not generated from the WIT`);
  }
  return problems;
}

/** Write `expected` into the package, removing stale files of wit/ and types/. */
function write(/** @type {Map<string, Buffer>} */ expected) {
  rmSync(join(PACKAGE_DIR, 'wit'), { recursive: true, force: true });
  rmSync(join(PACKAGE_DIR, 'types'), { recursive: true, force: true });
  for (const [path, content] of expected) {
    mkdirSync(dirname(join(PACKAGE_DIR, path)), { recursive: true });
    writeFileSync(join(PACKAGE_DIR, path), content);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const expected = expectedFiles();
  if (process.argv.includes('--check')) {
    const problems = differences(expected);
    if (problems.length > 0) {
      console.error(`the kit's WIT copy or types are out of date with ${relative(process.cwd(), SOURCE_WIT)}:\n  ${problems.join('\n  ')}\nrun \`npm run sync-wit\` in examples/js-kit and commit the result`);
      process.exit(1);
    }
    console.log(`wit/ and types/ match ${relative(process.cwd(), SOURCE_WIT)}`);
  } else {
    write(expected);
    console.log(`copied ${relative(process.cwd(), SOURCE_WIT)} to wit/ and generated ${expected.size - 1} type files in types/`);
  }
}
