// The head of every action executable (build/build.mjs puts it there): it compiles the action's
// bundle, which follows as a string, with V8's code cache kept beside the executable, so that a
// process per lease event does not compile ~300 KB of JavaScript from scratch each time. The cache
// is named after the Node version, the architecture and the bundle, and V8 itself refuses one that
// does not fit (another Node binary, a corrupt file): the bundle is then compiled as usual and the
// cache written again, when the directory is writable (atomically: a temporary file and a rename).
// Anything that goes wrong with the cache only costs the time it would have saved. Only a run that
// did an action's work writes it (exit 0, not --help): V8 caches what ran, and a cache of the help
// text alone would be kept and used from then on.
// PGIPAM_NO_CODE_CACHE=1 compiles without it (for measuring what it saves).
(function () {
  var fs = require('fs'),
    path = require('path'),
    vm = require('vm'),
    Module = require('module');
  var file = __filename;
  var cache = path.join(
    path.dirname(file),
    '.' + path.basename(file) + '.v8-' + process.version + '-' + process.arch + '-' + __PGIPAM_BUNDLE_HASH__,
  );
  var off = !!process.env.PGIPAM_NO_CODE_CACHE;
  var data;
  try {
    if (!off) data = fs.readFileSync(cache);
  } catch {}
  var script = new vm.Script(Module.wrap(__PGIPAM_BUNDLE__), { filename: file, cachedData: data });
  var help = process.argv.indexOf('--help') > 1 || process.argv.indexOf('-h') > 1;
  if (!off && !help && (!data || script.cachedDataRejected))
    process.once('exit', function (code) {
      if (code !== 0) return;
      var tmp = cache + '.' + process.pid;
      try {
        fs.writeFileSync(tmp, script.createCachedData(), { mode: 420 });
        fs.renameSync(tmp, cache);
      } catch {
        try {
          fs.unlinkSync(tmp);
        } catch {}
      }
    });
  script.runInThisContext().call(module.exports, module.exports, require, module, file, path.dirname(file));
})();
