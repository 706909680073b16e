// fastact._core: the NumPy boundary. Validates arguments, resolves dtypes and layouts, releases
// the GIL and calls csrc/ops.h. No numerics here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "ops.h"
#include "parallel.h"

namespace py = pybind11;

namespace fastact {
namespace {

// ---- NumPy objects, looked up once ---------------------------------------------------------

struct NumPy {
  py::object asarray, array, copyto, broadcast_to, errstate, can_cast, transpose,
      ascontiguousarray, axis_error, dtype_ctor;
  py::dtype float16, float32, float64;
};

const NumPy& numpy() {
  // Leaked on purpose: module-lifetime Python objects must not be destroyed after finalisation.
  static const NumPy* np = [] {
    py::module_ m = py::module_::import("numpy");
    py::object exceptions = py::module_::import("numpy.exceptions");
    return new NumPy{m.attr("asarray"),      m.attr("array"),        m.attr("copyto"),
                     m.attr("broadcast_to"), m.attr("errstate"),
                     m.attr("can_cast"),      m.attr("transpose"),    m.attr("ascontiguousarray"),
                     exceptions.attr("AxisError"), m.attr("dtype"),
                     py::dtype("float16"),   py::dtype::of<float>(), py::dtype::of<double>()};
  }();
  return *np;
}

std::string prefix(const char* fn) { return std::string("fastact.") + fn + ": "; }

std::string shape_str(const std::vector<py::ssize_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

// NumPy's broadcasting rule for two shapes, any ndim (np.broadcast_shapes stops at 32 dimensions).
bool broadcast_shape(const std::vector<py::ssize_t>& a, const std::vector<py::ssize_t>& b, std::vector<py::ssize_t>& out) {
  const std::size_t n = std::max(a.size(), b.size());
  out.assign(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const py::ssize_t da = i < a.size() ? a[a.size() - 1 - i] : 1, db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) return false;
    out[n - 1 - i] = da == 1 ? db : da;
  }
  return true;
}

std::string dtype_name(const py::dtype& dt) { return py::str(dt).cast<std::string>(); }

// ---- dtypes --------------------------------------------------------------------------------

enum class Kind { f16, f32, f64, integer, boolean, unsupported };

Kind classify(const py::dtype& dt) {
  switch (dt.kind()) {
    case 'f':
      switch (dt.itemsize()) {
        case 2: return Kind::f16;
        case 4: return Kind::f32;
        case 8: return Kind::f64;
        default: return Kind::unsupported;  // long double: no kernels, and silently narrowing it would lose bits
      }
    case 'i':
    case 'u': return Kind::integer;
    case 'b': return Kind::boolean;
    default: return Kind::unsupported;
  }
}

void require_real(const char* fn, const char* arg, const py::dtype& dt, Kind k) {
  if (k == Kind::unsupported)
    throw py::type_error(prefix(fn) + "unsupported dtype " + dtype_name(dt) + " for '" + arg +
                         "'; expected float16, float32, float64, or an integer or bool dtype");
}

// float16 and float32 compute in float32; float64, integers and bools in float64.
bool computes_in_float32(Kind k) { return k == Kind::f16 || k == Kind::f32; }

bool native_order(const py::dtype& dt) {
  const char bo = dt.byteorder();
  const std::uint16_t probe = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&probe) == 1;
  return bo == '=' || bo == '|' || bo == (little ? '<' : '>');
}

bool is_exactly(const py::array& a, const py::dtype& dt) {
  return a.dtype().num() == dt.num() && native_order(a.dtype());
}

// ---- layouts -------------------------------------------------------------------------------

bool aligned(const py::array& a) {
  return reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(a.itemsize()) == 0;
}

// Positive strides tiling one contiguous block in some axis order (C, Fortran, transposed...).
bool is_dense(const py::array& a) {
  if (!aligned(a)) return false;
  std::vector<std::pair<py::ssize_t, py::ssize_t>> dims;  // (stride, extent) of non-trivial axes
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) == 0) return true;
    if (a.shape(d) > 1) dims.emplace_back(a.strides(d), a.shape(d));
  }
  std::sort(dims.begin(), dims.end());
  py::ssize_t expected = a.itemsize();
  for (const auto& [stride, extent] : dims) {
    if (stride != expected) return false;
    expected *= extent;
  }
  return true;
}

// Same shape and the same element strides on every axis that has more than one element.
bool same_layout(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) != b.shape(d)) return false;
    if (a.shape(d) > 1 && a.strides(d) / a.itemsize() != b.strides(d) / b.itemsize()) return false;
    if (a.shape(d) > 1 && a.strides(d) % a.itemsize() != 0) return false;
  }
  return true;
}

// [lo, hi) byte range an array touches.
std::pair<std::uintptr_t, std::uintptr_t> extent(const py::array& a) {
  auto lo = reinterpret_cast<std::uintptr_t>(a.data());
  auto hi = lo;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) == 0) return {lo, lo};
    const py::ssize_t span = (a.shape(d) - 1) * a.strides(d);
    if (span < 0) lo += span;
    else hi += span;
  }
  return {lo, hi + a.itemsize()};
}

bool overlaps(const py::array& a, const py::array& b) {
  const auto [alo, ahi] = extent(a);
  const auto [blo, bhi] = extent(b);
  return alo < ahi && blo < bhi && alo < bhi && blo < ahi;
}

bool same_view(const py::array& a, const py::array& b) {
  return a.data() == b.data() && a.itemsize() == b.itemsize() && same_layout(a, b);
}

// A new array of dtype `dt` laid out like the dense array `like` (NumPy's order='K').
py::array empty_like(const py::dtype& dt, const py::array& like) {
  std::vector<py::ssize_t> shape = shape_of(like), strides(like.ndim());
  if (!is_dense(like)) return py::array(dt, shape);
  for (py::ssize_t d = 0; d < like.ndim(); ++d) strides[d] = like.strides(d) / like.itemsize() * dt.itemsize();
  return py::array(dt, shape, strides);
}

// Re-raises the pending ValueError/TypeError `e` as the same type with the function and the argument
// named in front of NumPy's message (NumPy's exception stays attached as __cause__); others pass.
[[noreturn]] void rethrow_named(py::error_already_set& e, const char* fn, const char* arg, const char* what) {
  if (!e.matches(PyExc_ValueError) && !e.matches(PyExc_TypeError)) throw;
  const std::string msg = prefix(fn) + "'" + arg + "' " + what + ": " + py::str(e.value()).cast<std::string>();
  py::raise_from(e, e.matches(PyExc_ValueError) ? PyExc_ValueError : PyExc_TypeError, msg.c_str());
  throw py::error_already_set();
}

py::array as_array(const char* fn, const char* arg, py::handle obj) {
  if (Py_TYPE(obj.ptr()) == reinterpret_cast<PyTypeObject*>(py::detail::npy_api::get().PyArray_Type_))
    return py::reinterpret_borrow<py::array>(obj);
  try {
    return numpy().asarray(obj);  // subclasses (np.matrix, masked arrays) become plain ndarrays
  } catch (py::error_already_set& e) {
    rethrow_named(e, fn, arg, "cannot be converted to an array");
  }
}

// `a` as a dense, aligned, native array of dtype `dt` (a copy only when needed).
py::array dense_input(const py::array& a, const py::dtype& dt) {
  py::array r = a;
  if (!is_exactly(r, dt)) r = numpy().array(r, py::arg("dtype") = dt, py::arg("order") = "K", py::arg("copy") = true);
  if (!is_dense(r)) r = numpy().array(r, py::arg("dtype") = dt, py::arg("order") = "K", py::arg("copy") = true);
  return r;
}

// `a` converted to dtype `dt` in exactly the layout of `like` (which is dense).
py::array match_layout(const py::array& a, const py::dtype& dt, const py::array& like) {
  if (is_exactly(a, dt) && same_layout(a, like) && aligned(a)) return a;
  py::array r = empty_like(dt, like);
  numpy().copyto(r, a, py::arg("casting") = "unsafe");
  return r;
}

// Runs f() with NumPy's floating-point error reporting off: casts to a narrower float (e.g. a
// float64 result into a float16 out) turn out-of-range values into inf, as NumPy's casts do,
// and fastact never warns or raises for them.
template <class F>
auto without_fp_errors(F&& f) {
  py::object state = numpy().errstate(py::arg("all") = "ignore");
  state.attr("__enter__")();
  try {
    auto result = f();
    state.attr("__exit__")(py::none(), py::none(), py::none());
    return result;
  } catch (...) {
    state.attr("__exit__")(py::none(), py::none(), py::none());
    throw;
  }
}

void copy_cast(const py::array& dst, const py::array& src) {
  without_fp_errors([&] { return numpy().copyto(dst, src, py::arg("casting") = "unsafe"); });
}

// ---- out= ----------------------------------------------------------------------------------

// The validated `out` argument (None when not given).
py::object check_out(const char* fn, py::handle out_obj, const std::vector<py::ssize_t>& shape,
                     const py::dtype& result) {
  if (out_obj.is_none()) return py::none();
  py::handle o = out_obj;
  if (py::isinstance<py::tuple>(o)) {
    py::tuple t = py::reinterpret_borrow<py::tuple>(o);
    if (t.size() != 1)
      throw py::value_error(prefix(fn) + "'out' as a tuple must hold exactly one array, got " + std::to_string(t.size()));
    o = t[0];
  }
  if (!py::isinstance<py::array>(o))
    throw py::type_error(prefix(fn) + "'out' must be a numpy.ndarray, got " +
                         std::string(Py_TYPE(o.ptr())->tp_name));
  py::array out = py::reinterpret_borrow<py::array>(o);
  if (shape_of(out) != shape)
    throw py::value_error(prefix(fn) + "'out' has shape " + shape_str(shape_of(out)) + " but the result has shape " +
                          shape_str(shape));
  if (!out.writeable()) throw py::value_error(prefix(fn) + "'out' is read-only");
  if (!(out.dtype().num() == result.num()) &&
      !numpy().can_cast(result, out.dtype(), py::arg("casting") = "same_kind").cast<bool>())
    throw py::type_error(prefix(fn) + "cannot cast the result from " + dtype_name(result) + " to 'out' dtype " +
                         dtype_name(out.dtype()) + " with casting rule 'same_kind'");
  return std::move(out);
}

// Whether the kernel may write straight into `out`: right dtype and layout, and not a partial
// overlap of an input (an exact alias is fine: every kernel reads an element before writing it).
bool writable_in_place(const py::object& out, const py::dtype& ct, const py::dtype& result, const py::array& layout,
                       std::initializer_list<const py::array*> inputs) {
  // A float16 result is computed in float32 and must be rounded to float16 before any cast.
  if (out.is_none() || ct.num() != result.num()) return false;
  const py::array o = py::reinterpret_borrow<py::array>(out);
  if (!is_exactly(o, ct) || !is_dense(o) || !same_layout(o, layout)) return false;
  for (const py::array* in : inputs)
    if (overlaps(o, *in) && !same_view(o, *in)) return false;
  return true;
}

// Copies or casts the computed `res` into `out` (when given), or to the result dtype, and
// unwraps 0-d results into NumPy scalars as ufuncs do.
py::object finish(py::array res, const py::object& out, const py::dtype& result, bool scalar) {
  if (res.dtype().num() != result.num()) {  // float16: round the float32 result once
    py::array r = empty_like(result, res);
    copy_cast(r, res);
    res = r;
  }
  if (!out.is_none()) {
    const py::array o = py::reinterpret_borrow<py::array>(out);
    if (o.ptr() != res.ptr()) copy_cast(o, res);
    return out;
  }
  if (scalar) return res[py::tuple()];
  return std::move(res);
}

template <class T>
T* ptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
template <class T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// ---- argument helpers ----------------------------------------------------------------------

double real_scalar(const char* fn, const char* arg, py::handle v) {
  if (PyFloat_Check(v.ptr())) return PyFloat_AS_DOUBLE(v.ptr());
  if (PyLong_Check(v.ptr()) && !PyBool_Check(v.ptr())) {
    const double d = PyLong_AsDouble(v.ptr());
    if (d == -1.0 && PyErr_Occurred()) {  // OverflowError: beyond the float64 range
      PyErr_Clear();
      throw py::value_error(prefix(fn) + "'" + arg + "' is too large to convert to a float");
    }
    return d;
  }
  const auto not_real = [&] {
    return py::type_error(prefix(fn) + "'" + arg + "' must be a real number, got " + std::string(Py_TYPE(v.ptr())->tp_name));
  };
  py::array a;
  try {
    a = numpy().asarray(v);
  } catch (py::error_already_set& e) {  // e.g. a ragged list
    if (!e.matches(PyExc_ValueError) && !e.matches(PyExc_TypeError)) throw;
    throw not_real();
  }
  const char k = a.dtype().kind();
  if (a.ndim() != 0 || !(k == 'f' || k == 'i' || k == 'u')) throw not_real();
  return py::cast<double>(py::float_(a));
}

[[noreturn]] void raise_axis_error(const char* fn, py::ssize_t axis, py::ssize_t ndim) {
  py::object err = numpy().axis_error(axis, ndim, std::string("fastact.") + fn);  // "fastact.softmax: axis 2 is..."
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
  throw py::error_already_set();
}

py::ssize_t axis_index(const char* fn, py::handle a) {
  const auto not_an_int = [&] {
    return py::type_error(prefix(fn) + "'axis' must be an int, a tuple of ints, or None, got " +
                          std::string(Py_TYPE(a.ptr())->tp_name));
  };
  if (PyBool_Check(a.ptr()) || !PyIndex_Check(a.ptr())) throw not_an_int();
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(a.ptr()));
  if (!i) {  // __index__ raised (a NumPy array of more than one element does)
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) throw py::error_already_set();
    PyErr_Clear();
    throw not_an_int();
  }
  return PyNumber_AsSsize_t(i.ptr(), nullptr);  // saturates: beyond the int64 range is out of range
}

// Which axes are reduced. 0-d arrays accept axis 0, -1, None or () and reduce their one element.
std::vector<bool> reduced_axes(const char* fn, py::handle axis, py::ssize_t ndim) {
  std::vector<bool> reduce(static_cast<std::size_t>(ndim), false);
  if (axis.is_none()) {
    std::fill(reduce.begin(), reduce.end(), true);
    return reduce;
  }
  std::vector<py::ssize_t> list;
  if (py::isinstance<py::tuple>(axis) || py::isinstance<py::list>(axis)) {
    for (py::handle a : axis) list.push_back(axis_index(fn, a));
  } else {
    list.push_back(axis_index(fn, axis));
  }
  const py::ssize_t bound = ndim == 0 ? 1 : ndim;
  for (py::ssize_t a : list) {
    if (a < -bound || a >= bound) raise_axis_error(fn, a, ndim);
    const py::ssize_t d = a < 0 ? a + bound : a;
    if (ndim == 0) continue;
    if (reduce[static_cast<std::size_t>(d)]) throw py::value_error(prefix(fn) + "duplicate value in 'axis'");
    reduce[static_cast<std::size_t>(d)] = true;
  }
  return reduce;
}

// (outer, len, inner) view of a dense array whose reduced axes are adjacent in memory order.
struct SliceGeometry {
  bool ok;
  std::size_t outer, len, inner;
};

SliceGeometry geometry(const py::array& a, const std::vector<bool>& reduce) {
  std::vector<py::ssize_t> axes;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.shape(d) > 1) axes.push_back(d);
  std::stable_sort(axes.begin(), axes.end(), [&](py::ssize_t x, py::ssize_t y) { return a.strides(x) > a.strides(y); });
  std::size_t outer = 1, len = 1, inner = 1;
  int phase = 0;  // 0: before the reduced block, 1: inside it, 2: after it
  for (py::ssize_t d : axes) {
    const auto n = static_cast<std::size_t>(a.shape(d));
    if (reduce[static_cast<std::size_t>(d)]) {
      if (phase == 2) return {false, 0, 0, 0};
      phase = 1, len *= n;
    } else {
      if (phase == 1) phase = 2;
      (phase == 0 ? outer : inner) *= n;
    }
  }
  if (phase == 0) return {true, outer * inner, 1, 1};  // nothing reduced with extent > 1
  return {true, outer, len, inner};
}

// A copy of `a` with the reduced axes innermost, viewed back in the original axis order.
py::array reduced_axes_innermost(const py::array& a, const std::vector<bool>& reduce) {
  std::vector<py::ssize_t> perm, inverse(static_cast<std::size_t>(a.ndim()));
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (!reduce[static_cast<std::size_t>(d)]) perm.push_back(d);
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (reduce[static_cast<std::size_t>(d)]) perm.push_back(d);
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[static_cast<std::size_t>(perm[i])] = static_cast<py::ssize_t>(i);
  py::object t = numpy().ascontiguousarray(numpy().transpose(a, py::cast(perm)));
  return numpy().transpose(t, py::cast(inverse));
}

// ---- the operations ------------------------------------------------------------------------

struct Resolved {
  py::dtype compute, result;
};

Resolved resolve_one(Kind k) {
  const NumPy& np = numpy();
  if (k == Kind::f16) return {np.float32, np.float16};
  if (k == Kind::f32) return {np.float32, np.float32};
  return {np.float64, np.float64};
}

Resolved resolve_two(Kind a, Kind b) {
  const NumPy& np = numpy();
  if (a == Kind::f16 && b == Kind::f16) return {np.float32, np.float16};
  if (computes_in_float32(a) && computes_in_float32(b)) return {np.float32, np.float32};
  return {np.float64, np.float64};
}

// dt: x's dtype in native byte order (the kernel compares native integers).
template <class I>
py::object relu_integer_typed(py::array x, const py::dtype& dt, const py::object& out, bool scalar) {
  py::array xin = dense_input(x, dt);
  py::array dst = writable_in_place(out, dt, dt, xin, {&xin}) ? py::reinterpret_borrow<py::array>(out)
                                                              : empty_like(dt, xin);
  {
    py::gil_scoped_release release;
    run_relu_integer<I>(cptr<I>(xin), ptr<I>(dst), static_cast<std::size_t>(xin.size()));
  }
  return finish(dst, out, dt, scalar);
}

py::object relu_integer(py::array x, py::handle out_obj) {
  const py::dtype dt = x.dtype().attr("newbyteorder")("=");
  py::object out = check_out("relu", out_obj, shape_of(x), dt);
  const bool scalar = x.ndim() == 0 && out.is_none();
  const bool is_signed = dt.kind() == 'i';
  switch (dt.itemsize()) {
    case 1: return is_signed ? relu_integer_typed<std::int8_t>(x, dt, out, scalar) : relu_integer_typed<std::uint8_t>(x, dt, out, scalar);
    case 2: return is_signed ? relu_integer_typed<std::int16_t>(x, dt, out, scalar) : relu_integer_typed<std::uint16_t>(x, dt, out, scalar);
    case 4: return is_signed ? relu_integer_typed<std::int32_t>(x, dt, out, scalar) : relu_integer_typed<std::uint32_t>(x, dt, out, scalar);
    default: return is_signed ? relu_integer_typed<std::int64_t>(x, dt, out, scalar) : relu_integer_typed<std::uint64_t>(x, dt, out, scalar);
  }
}

template <class T>
void call_unary(Unary op, const py::array& in, py::array& dst, double param) {
  const T* src = cptr<T>(in);
  T* d = ptr<T>(dst);
  const auto n = static_cast<std::size_t>(in.size());
  py::gil_scoped_release release;
  run_unary<T>(op, src, d, n, static_cast<T>(param));
}

py::object unary(const char* fn, Unary op, py::handle x_obj, py::handle out_obj, double param) {
  py::array x = as_array(fn, "x", x_obj);
  const Kind kind = classify(x.dtype());
  if (op == Unary::relu && kind == Kind::integer) return relu_integer(x, out_obj);
  if (op == Unary::relu && kind == Kind::boolean)
    throw py::type_error(prefix(fn) + "unsupported dtype bool for 'x'; relu keeps integer dtypes but not bool");
  require_real(fn, "x", x.dtype(), kind);
  const Resolved r = resolve_one(kind);
  py::object out = check_out(fn, out_obj, shape_of(x), r.result);
  const bool scalar = x.ndim() == 0 && out.is_none();
  py::array in = dense_input(x, r.compute);
  py::array dst = writable_in_place(out, r.compute, r.result, in, {&in}) ? py::reinterpret_borrow<py::array>(out)
                                                               : empty_like(r.compute, in);
  if (r.compute.num() == numpy().float32.num()) call_unary<float>(op, in, dst, param);
  else call_unary<double>(op, in, dst, param);
  return finish(dst, out, r.result, scalar);
}

template <class T>
void call_binary(Binary op, const py::array& g, const py::array& v, py::array& dst, double param) {
  const T* gp = cptr<T>(g);
  const T* vp = cptr<T>(v);
  T* d = ptr<T>(dst);
  const auto n = static_cast<std::size_t>(v.size());
  py::gil_scoped_release release;
  run_binary<T>(op, gp, vp, d, n, static_cast<T>(param));
}

py::object binary(const char* fn, const char* v_name, Binary op, py::handle g_obj, py::handle v_obj,
                  py::handle out_obj, double param) {
  py::array g = as_array(fn, "grad", g_obj), v = as_array(fn, v_name, v_obj);
  const Kind gk = classify(g.dtype()), vk = classify(v.dtype());
  require_real(fn, "grad", g.dtype(), gk);
  require_real(fn, v_name, v.dtype(), vk);
  const Resolved r = resolve_two(gk, vk);
  std::vector<py::ssize_t> shape = shape_of(v);
  if (shape_of(g) != shape) {
    if (!broadcast_shape(shape_of(g), shape_of(v), shape))
      throw py::value_error(prefix(fn) + "'grad' with shape " + shape_str(shape_of(g)) + " and '" + v_name +
                            "' with shape " + shape_str(shape_of(v)) + " cannot be broadcast together");
    if (shape_of(v) != shape) v = numpy().broadcast_to(v, py::cast(shape));
  }
  py::object out = check_out(fn, out_obj, shape, r.result);
  const bool scalar = shape.empty() && out.is_none();
  py::array vin = dense_input(v, r.compute);
  py::array gin = match_layout(g, r.compute, vin);  // broadcasts grad too
  py::array dst = writable_in_place(out, r.compute, r.result, vin, {&vin, &gin}) ? py::reinterpret_borrow<py::array>(out)
                                                                       : empty_like(r.compute, vin);
  if (r.compute.num() == numpy().float32.num()) call_binary<float>(op, gin, vin, dst, param);
  else call_binary<double>(op, gin, vin, dst, param);
  return finish(dst, out, r.result, scalar);
}

// Applies softmax's dtype= argument: a floating dtype the input is cast to first.
py::array apply_dtype(const char* fn, py::array x, py::handle dtype) {
  if (dtype.is_none()) return x;
  py::dtype dt;
  try {
    dt = numpy().dtype_ctor(dtype);
  } catch (py::error_already_set& e) {
    rethrow_named(e, fn, "dtype", "is not a NumPy dtype");
  }
  if (dt.kind() != 'f' || classify(dt) == Kind::unsupported)
    throw py::type_error(prefix(fn) + "'dtype' must be float16, float32 or float64, got " + dtype_name(dt));
  if (x.dtype().kind() == 'c' || classify(x.dtype()) == Kind::unsupported) require_real(fn, "x", x.dtype(), Kind::unsupported);
  if (x.dtype().num() == dt.num() && native_order(x.dtype())) return x;
  return without_fp_errors([&] { return py::array(numpy().asarray(x, py::arg("dtype") = dt)); });
}

template <class T>
void call_softmax(Softmax op, const py::array& in, py::array& dst, const SliceGeometry& geo) {
  const T* src = cptr<T>(in);
  T* d = ptr<T>(dst);
  py::gil_scoped_release release;
  run_softmax<T>(op, src, d, geo.outer, geo.len, geo.inner);
}

py::object softmax(const char* fn, Softmax op, py::handle x_obj, py::handle axis, py::handle dtype, py::handle out_obj) {
  py::array x = apply_dtype(fn, as_array(fn, "x", x_obj), dtype);
  const Kind kind = classify(x.dtype());
  require_real(fn, "x", x.dtype(), kind);
  const Resolved r = resolve_one(kind);
  const std::vector<bool> reduce = reduced_axes(fn, axis, x.ndim());
  py::object out = check_out(fn, out_obj, shape_of(x), r.result);
  const bool scalar = x.ndim() == 0 && out.is_none();
  py::array in = dense_input(x, r.compute);
  SliceGeometry geo = geometry(in, reduce);
  if (!geo.ok) {
    in = reduced_axes_innermost(in, reduce);
    geo = geometry(in, reduce);
  }
  py::array dst = writable_in_place(out, r.compute, r.result, in, {&in}) ? py::reinterpret_borrow<py::array>(out)
                                                               : empty_like(r.compute, in);
  if (in.size() > 0) {
    if (r.compute.num() == numpy().float32.num()) call_softmax<float>(op, in, dst, geo);
    else call_softmax<double>(op, in, dst, geo);
  }
  return finish(dst, out, r.result, scalar);
}

template <class T>
void call_softmax_backward(Softmax op, const py::array& g, const py::array& v, py::array& dst, const SliceGeometry& geo) {
  const T* gp = cptr<T>(g);
  const T* vp = cptr<T>(v);
  T* d = ptr<T>(dst);
  py::gil_scoped_release release;
  run_softmax_backward<T>(op, gp, vp, d, geo.outer, geo.len, geo.inner);
}

py::object softmax_backward(const char* fn, const char* v_name, Softmax op, py::handle g_obj, py::handle v_obj,
                            py::handle axis, py::handle out_obj) {
  py::array g = as_array(fn, "grad", g_obj), v = as_array(fn, v_name, v_obj);
  const Kind gk = classify(g.dtype()), vk = classify(v.dtype());
  require_real(fn, "grad", g.dtype(), gk);
  require_real(fn, v_name, v.dtype(), vk);
  if (shape_of(g) != shape_of(v))
    throw py::value_error(prefix(fn) + "'grad' and '" + v_name + "' must have the same shape, got " +
                          shape_str(shape_of(g)) + " and " + shape_str(shape_of(v)));
  const Resolved r = resolve_two(gk, vk);
  const std::vector<bool> reduce = reduced_axes(fn, axis, v.ndim());
  py::object out = check_out(fn, out_obj, shape_of(v), r.result);
  const bool scalar = v.ndim() == 0 && out.is_none();
  py::array vin = dense_input(v, r.compute);
  SliceGeometry geo = geometry(vin, reduce);
  if (!geo.ok) {
    vin = reduced_axes_innermost(vin, reduce);
    geo = geometry(vin, reduce);
  }
  py::array gin = match_layout(g, r.compute, vin);
  py::array dst = writable_in_place(out, r.compute, r.result, vin, {&vin, &gin}) ? py::reinterpret_borrow<py::array>(out)
                                                                       : empty_like(r.compute, vin);
  if (vin.size() > 0) {
    if (r.compute.num() == numpy().float32.num()) call_softmax_backward<float>(op, gin, vin, dst, geo);
    else call_softmax_backward<double>(op, gin, vin, dst, geo);
  }
  return finish(dst, out, r.result, scalar);
}

// ---- threads and targets -------------------------------------------------------------------

void set_num_threads(py::handle n) {
  const auto not_an_int = [&] {
    return py::type_error("fastact.set_num_threads: 'n' must be an int, got " + std::string(Py_TYPE(n.ptr())->tp_name));
  };
  if (PyBool_Check(n.ptr()) || !PyIndex_Check(n.ptr())) throw not_an_int();
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(n.ptr()));
  if (!i) {  // __index__ raised
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) throw py::error_already_set();
    PyErr_Clear();
    throw not_an_int();
  }
  const auto v = static_cast<long long>(PyNumber_AsSsize_t(i.ptr(), nullptr));  // saturates
  if (v < 1) throw py::value_error("fastact.set_num_threads: 'n' must be >= 1, got " + std::to_string(v));
  set_max_threads(v > (1 << 16) ? (1 << 16) : static_cast<int>(v));
}

std::vector<std::string> simd_targets() {
  std::vector<std::string> names;
  for (const KernelTable* t : supported_targets()) names.emplace_back(t->name);
  return names;
}

void set_simd_target(const std::string& name) {
  try {
    set_active_target(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

}  // namespace
}  // namespace fastact

PYBIND11_MODULE(_core, m) {
  using namespace fastact;
  m.doc() = "fastact's compiled core (private; use the fastact package)";
  try {
    init_active_target();
  } catch (const std::invalid_argument& e) {
    throw py::import_error(e.what());
  }

  const py::arg x("x"), grad("grad");
  const py::arg_v out = py::arg("out") = py::none(), slope = py::arg("negative_slope") = 0.01,
                  axis = py::arg("axis") = -1;

  m.def("relu", [](py::handle a, py::handle o) { return unary("relu", Unary::relu, a, o, 0.0); }, x, out);
  m.def(
      "leaky_relu",
      [](py::handle a, py::handle s, py::handle o) {
        return unary("leaky_relu", Unary::leaky_relu, a, o, real_scalar("leaky_relu", "negative_slope", s));
      },
      x, slope, out);
  m.def("sigmoid", [](py::handle a, py::handle o) { return unary("sigmoid", Unary::sigmoid, a, o, 0.0); }, x, out);
  m.def("tanh", [](py::handle a, py::handle o) { return unary("tanh", Unary::tanh, a, o, 0.0); }, x, out);

  m.def(
      "relu_backward",
      [](py::handle g, py::handle y, py::handle o) {
        return binary("relu_backward", "y", Binary::relu_backward, g, y, o, 0.0);
      },
      grad, py::arg("y"), out);
  m.def(
      "leaky_relu_backward",
      [](py::handle g, py::handle xv, py::handle s, py::handle o) {
        return binary("leaky_relu_backward", "x", Binary::leaky_relu_backward, g, xv, o,
                      real_scalar("leaky_relu_backward", "negative_slope", s));
      },
      grad, x, slope, out);
  m.def(
      "sigmoid_backward",
      [](py::handle g, py::handle y, py::handle o) {
        return binary("sigmoid_backward", "y", Binary::sigmoid_backward, g, y, o, 0.0);
      },
      grad, py::arg("y"), out);
  m.def(
      "tanh_backward",
      [](py::handle g, py::handle y, py::handle o) {
        return binary("tanh_backward", "y", Binary::tanh_backward, g, y, o, 0.0);
      },
      grad, py::arg("y"), out);

  m.def(
      "softmax",
      [](py::handle a, py::handle ax, py::handle dt, py::handle o) {
        return softmax("softmax", Softmax::softmax, a, ax, dt, o);
      },
      x, axis, py::arg("dtype") = py::none(), out);
  m.def(
      "log_softmax",
      [](py::handle a, py::handle ax, py::handle dt, py::handle o) {
        return softmax("log_softmax", Softmax::log_softmax, a, ax, dt, o);
      },
      x, axis, py::arg("dtype") = py::none(), out);
  m.def(
      "softmax_backward",
      [](py::handle g, py::handle y, py::handle ax, py::handle o) {
        return softmax_backward("softmax_backward", "y", Softmax::softmax, g, y, ax, o);
      },
      grad, py::arg("y"), axis, out);
  m.def(
      "log_softmax_backward",
      [](py::handle g, py::handle y, py::handle ax, py::handle o) {
        return softmax_backward("log_softmax_backward", "log_y", Softmax::log_softmax, g, y, ax, o);
      },
      grad, py::arg("log_y"), axis, out);

  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &max_threads);
  m.def("openmp_enabled", &openmp_enabled);
  m.def("simd_target", [] { return std::string(active_target().name); });
  m.def("simd_targets", &simd_targets);
  m.def("compiled_simd_targets", &compiled_target_names);
  m.def("set_simd_target", &set_simd_target, py::arg("name"));
}
