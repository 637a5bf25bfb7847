# Thông báo: nội dung GET /v1/me/notifications hiển thị và nội dung e-mail, mỗi loại một
# tiêu đề và một nội dung (tên loại với `.` viết thành `-`).

email-greeting = Xin chào { $name },
email-footer =
    —
    GoodGo · Hà Nội · TP. Hồ Chí Minh
    Bạn có thể tắt các e-mail này trong phần cài đặt thông báo.

welcome-subject = Chào mừng bạn đến với GoodGo
welcome-body = Tài khoản GoodGo của bạn ({ $email }) đã sẵn sàng. Hãy xem các tin đăng ở Hà Nội và TP. Hồ Chí Minh, hoặc đăng tin của riêng bạn.

listing-published-subject = Tin đăng của bạn đã hiển thị: { $title }
listing-published-body = Tin đăng "{ $title }" (#{ $listing_id }) của bạn đã được đăng và xuất hiện trong kết quả tìm kiếm.

listing-unpublished-subject = Tin đăng của bạn đã bị gỡ: { $title }
listing-unpublished-body = Người kiểm duyệt đã gỡ tin đăng "{ $title }" (#{ $listing_id }) của bạn khỏi kết quả tìm kiếm và chuyển về bản nháp. Lý do: { $reason }. Hãy sửa tin và đăng lại khi đã sẵn sàng.

payment-receipt-subject = Biên nhận cho gói { $plan } của bạn
payment-receipt-body = Chúng tôi đã nhận khoản thanh toán { $amount } { $currency } cho gói { $plan } (mã tham chiếu { $reference }). Xin cảm ơn.

subscription-ended-subject = Gói { $plan } của bạn đã kết thúc
subscription-ended-body = Gói { $plan } của bạn đã kết thúc; từ nay áp dụng gói miễn phí. Các tin đăng vượt hạn mức của gói đã được chuyển về bản nháp ({ $unpublished } tin).
