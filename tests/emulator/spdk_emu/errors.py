"""Errors answered as JSON-RPC error objects, with SPDK's codes."""
import errno

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class RpcError(Exception):
    """An error object: ``{"code": code, "message": message}``."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self):
        return {"code": self.code, "message": self.message}


def errno_error(err, message=None):
    """SPDK's ``spdk_jsonrpc_send_error_response(request, -errno, spdk_strerror(errno))``."""
    return RpcError(-err, message if message is not None else os_strerror(err))


def invalid_params(err):
    """SPDK's frequent ``SPDK_JSONRPC_ERROR_INVALID_PARAMS, spdk_strerror(-rc)``."""
    return RpcError(INVALID_PARAMS, os_strerror(err))


def decode_failed():
    return RpcError(INTERNAL_ERROR, "spdk_json_decode_object failed")


def os_strerror(err):
    import os
    return os.strerror(err)


ENODEV = errno.ENODEV
EEXIST = errno.EEXIST
EINVAL = errno.EINVAL
EBUSY = errno.EBUSY
EPERM = errno.EPERM
ENOMEM = errno.ENOMEM
EIO = errno.EIO
ENOSPC = errno.ENOSPC
ENOENT = errno.ENOENT
EALREADY = errno.EALREADY
EOPNOTSUPP = errno.EOPNOTSUPP
ETIMEDOUT = errno.ETIMEDOUT
