# node-gyp entry point. node-gyp-build (the `install` script) and prebuildify both spawn
# `node-gyp rebuild`; this hands off to the real CMake build (native/tools/build.mjs → cmake-js)
# and puts llama_duet.node in build/Release. When a prebuild for this platform exists it does
# nothing, unless force_build=1 (`npm_config_force_build=1` or `node-gyp rebuild -- -Dforce_build=1`).
{
  'variables': {
    'force_build%': '0',
    'has_prebuild%': '<!(node -e "try{require(\'node-gyp-build\').path(process.cwd());console.log(1)}catch(e){console.log(0)}")',
  },
  'targets': [{
    'target_name': 'llama_duet',
    'type': 'none',
    'conditions': [
      ['has_prebuild=="0" or force_build=="1"', {
        'actions': [{
          'action_name': 'cmake_js_build',
          'inputs': [],
          'outputs': ['<(module_root_dir)/build/Release/llama_duet.node'],
          'action': ['node', '<(module_root_dir)/native/tools/build.mjs', '<(module_root_dir)/build/Release'],
        }],
      }],
    ],
  }],
}
