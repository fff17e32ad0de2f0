// The extension's Python module: empty on purpose.
//
// Every operator is registered with the dispatcher (TORCH_LIBRARY_FRAGMENT(gankern_cuda, ...)
// in the other binding files) and reached as torch.ops.gankern_cuda.*. The extension still
// has to be an importable Python module so that gankern/_ext.py can load it (ahead of time as
// gankern._C, or just in time with torch.utils.cpp_extension.load, is_python_module=True);
// importing it runs those static registrations. TORCH_EXTENSION_NAME comes from the build.
#include <pybind11/pybind11.h>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {}
