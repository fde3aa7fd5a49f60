// fast-glob, as a diagnosis script would use it: the matching names of one
// directory. Usage: node fast-glob-sync.mjs DIR PATTERN
import fg from 'fast-glob';

const [dir = '.', pattern = '*'] = process.argv.slice(2);
const names = fg.sync(pattern, { cwd: dir });
console.log(names.length);
