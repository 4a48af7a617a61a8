// Loaded with `node --import`: makes the optional packages of the local stages (and the installer
// packages that need them) impossible to import, as in the container image, which leaves them out.
import { register } from 'node:module';

const hooks = `
const LEFT_OUT = /^(@ffmpeg-installer|@ffprobe-installer|onnxruntime-node)(\\/|$)/;
export async function resolve(specifier, context, next) {
  if (LEFT_OUT.test(specifier)) {
    const error = new Error('Cannot find package ' + specifier + ': left out, as in the container image');
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
