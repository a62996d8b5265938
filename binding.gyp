# node-gyp entry point, for prebuildify (`npm run prebuild` spawns `node-gyp rebuild`) and anyone running
# node-gyp by hand: its one action hands off to the real CMake build (native/tools/build.mjs → cmake-js)
# and puts llama_duet.node in build/Release. (The install script, native/tools/install.mjs, calls build.mjs
# directly.) build.mjs does nothing here when a prebuild for this platform exists under prebuilds/, unless
# forced (npm_config_force_build=1 or LLAMA_DUET_FORCE_BUILD=1; prebuildify forces it).
{
  'targets': [{
    'target_name': 'llama_duet',
    'type': 'none',
    'actions': [{
      'action_name': 'cmake_js_build',
      'inputs': [],
      'outputs': ['<(module_root_dir)/build/Release/llama_duet.node'],
      'action': ['node', '<(module_root_dir)/native/tools/build.mjs', '<(module_root_dir)/build/Release', '--from-gyp'],
    }],
  }],
}
