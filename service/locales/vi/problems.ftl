# Tài liệu lỗi (RFC 9457): `title` của từng loại lỗi, theo slug (`/problems/<slug>`),
# và các chi tiết do API tự viết.

problem-validation-failed = Yêu cầu có trường không hợp lệ
problem-bad-request = Yêu cầu không đúng định dạng
problem-unauthenticated = Cần đăng nhập
problem-forbidden = Bạn không được phép làm việc này
problem-account-suspended = Tài khoản này đang bị tạm khóa
problem-not-found = Không tìm thấy tài nguyên
problem-conflict = Yêu cầu xung đột với dữ liệu hiện có
problem-quota-exceeded = Đã dùng hết hạn mức tin đăng đang hiển thị của gói
problem-rate-limited = Quá nhiều yêu cầu; vui lòng chậm lại
problem-internal = Đã có lỗi xảy ra phía chúng tôi
problem-unavailable = Dịch vụ tạm thời không khả dụng; vui lòng thử lại sau ít phút
problem-photos-disabled = Máy chủ này không hỗ trợ ảnh tin đăng
problem-storage-unavailable = Kho lưu trữ ảnh tạm thời không khả dụng; vui lòng thử lại sau ít phút
problem-method-not-allowed = Phương thức này không được phép ở đây
problem-timeout = Yêu cầu mất quá nhiều thời gian
problem-payload-too-large = Nội dung yêu cầu quá lớn
problem-unsupported-media-type = Hãy gửi JSON với Content-Type: application/json
problem-error = Yêu cầu không thành công

detail-account-suspended = quản trị viên đã tạm khóa tài khoản này; cho đến khi được mở lại, mọi token của tài khoản đều không dùng được
detail-quota-exceeded = gói { $plan } cho phép { $quota } tin đăng đang hiển thị; hãy lưu trữ bớt một tin, hoặc chuyển sang gói lớn hơn (GET /v1/plans, POST /v1/checkout)
detail-photos-disabled = máy chủ này chưa được cấu hình kho lưu trữ ảnh
